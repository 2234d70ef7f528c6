"""The day's contacts: the gated plan dispatched to the channel stages in a fixed order."""

from __future__ import annotations

import numpy as np

from collsim.capacity import centre_hour_of
from collsim.plan import Plan
from collsim.sim.stages import calls, legal, messages, post, records
from collsim.sim.state import SimState
from collsim.vocab import Channel

_MESSAGE_CHANNELS = (Channel.SMS, Channel.EMAIL, Channel.APP_PUSH)


def execute_plan(s: SimState, plan: Plan, option: np.ndarray) -> None:
    """Carry out the gated plan: messages, voice bot, letters, legal, field, agent calls.

    Args:
        s: the simulation state.
        plan: the day's plan (for priorities).
        option: int [N] option of each account after the gates (-1: no contact).
    """
    chosen = np.flatnonzero(option >= 0)
    channel = option[chosen] // s.options.n_slots
    hour = s.options.hour[option[chosen]]
    for c in _MESSAGE_CHANNELS:
        sel = channel == c
        messages.send_messages(s, chosen[sel], int(c), hour[sel])
    sel = channel == Channel.VOICE_BOT
    calls.voice_bot(s, chosen[sel], hour[sel])
    sel = channel == Channel.LETTER
    post.send_letters(s, chosen[sel])
    sel = channel == Channel.LEGAL
    legal.file_cases(s, chosen[sel])
    visits = chosen[channel == Channel.FIELD_VISIT]
    visit_hour = hour[channel == Channel.FIELD_VISIT]
    order = np.lexsort((visits, plan.priority[visits]))
    visits, visit_hour = visits[order], visit_hour[order]
    shift = centre_hour_of(s.scenario.capacity, s.portfolio.timezones, s.day)
    day_start_h = s.day_index * 24.0
    started = s.field.schedule_day(
        day_start_h,
        visit_hour + shift[s.portfolio.timezone[visits]],
        float(max(s.scenario.sim.operating_hours) + 1 + shift.max()),
    )
    sel = channel == Channel.AGENT_CALL
    agent_calls = s.agent_call_stage or calls.agent_calls
    agent_calls(s, chosen[sel], hour[sel], plan.priority[chosen[sel]], shift)
    s.run_clock(day_start_h + 24.0)
    calls.field_outcomes(s, visits[started], visit_hour[started])
    records.record_overflow(
        s, visits[~started], int(Channel.FIELD_VISIT), visit_hour[~started], "field_team"
    )


__all__ = ["execute_plan"]
