"""Treatments beyond the channel: offers and variants as arrays for the engine.

A treatment is the pair (offer, variant) of a planned contact (``Plan.offer``,
``Plan.variant``; codes into ``vocab.OFFERS`` and ``vocab.VARIANTS``).  (none,
standard) is no treatment and costs nothing: runs that use no treatment draw no
extra random numbers and write the same ledger as before treatments existed.

The self-service payment link is not an offer: every digital message carries one.

The scenario's ``treatments`` section (:class:`collsim.config.TreatmentsConfig`)
says which channels carry which offer and variant, from which DPD an offer may be
made, the offers' terms, and how each latent segment responds.  This module turns it
into lookup tables indexed by codes, so the borrower model and the gate stay numpy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from collsim.config import Scenario, TreatmentsConfig
from collsim.vocab import CHANNELS, N_CHANNELS, OFFERS, VARIANTS, Offer

SCENARIO_RULE_ID = "treatment.scenario"
"""Rule id recorded when the scenario does not support a planned treatment.

(The channel cannot carry the offer or variant, the account is below the offer's
minimum DPD, or the scenario has no ``treatments`` section.)
"""

SCALE_FIELDS: tuple[str, ...] = ("pay", "promise", "complaint", "cease", "take_up")
"""Columns of :attr:`TreatmentTables.variant_scale`."""

N_OFFERS = len(OFFERS)
N_VARIANTS = len(VARIANTS)


@dataclass(frozen=True)
class TreatmentTables:
    """A scenario's treatments as arrays (segment axis follows ``Latent.segments``).

    Attributes:
        config: the scenario's treatments section (None: treatments unsupported).
        offer_channels: bool [O, C]: the channel can carry the offer (row 0: all).
        variant_channels: bool [V, C]: the channel can carry the variant (row 0: all).
        min_dpd: int [O]: minimum DPD of each offer.
        take_up: float [O]: base take-up per right-party conversation (0 for none).
        take_up_mult: float [G, O]: segment multipliers on take-up.
        variant_scale: float [G, V, 5]: segment × variant multipliers (``SCALE_FIELDS``).
        plan_keep_mult: float [G]: × P(instalment paid) on an offered plan.
        charge_off_dpd: the scenario's charge-off DPD (settlement urgency).
        urgency_exponent: settlement take-up × (dpd / charge_off_dpd) ** k.
        message_factor: take-up through a read message relative to a conversation.
    """

    config: TreatmentsConfig | None
    offer_channels: np.ndarray
    variant_channels: np.ndarray
    min_dpd: np.ndarray
    take_up: np.ndarray
    take_up_mult: np.ndarray
    variant_scale: np.ndarray
    plan_keep_mult: np.ndarray
    charge_off_dpd: int = 180
    urgency_exponent: float = 0.0
    message_factor: float = 0.0

    @classmethod
    def from_scenario(cls, scenario: Scenario, segments: tuple[str, ...]) -> TreatmentTables:
        """Build the tables of ``scenario`` for latent segments named ``segments``."""
        cfg = scenario.treatments
        g = len(segments)
        offer_channels = np.zeros((N_OFFERS, N_CHANNELS), dtype=bool)
        variant_channels = np.zeros((N_VARIANTS, N_CHANNELS), dtype=bool)
        offer_channels[0] = variant_channels[0] = True
        min_dpd = np.zeros(N_OFFERS, dtype=np.int64)
        take_up = np.zeros(N_OFFERS)
        take_up_mult = np.ones((g, N_OFFERS))
        variant_scale = np.ones((g, N_VARIANTS, len(SCALE_FIELDS)))
        plan_keep_mult = np.ones(g)
        if cfg is not None:
            for code in range(1, N_OFFERS):
                offer = cfg.offer(code)
                offer_channels[code, [CHANNELS.index(c) for c in offer.channels]] = True
                min_dpd[code] = offer.min_dpd
                take_up[code] = offer.take_up
            for name, variant in cfg.variants.items():
                variant_channels[
                    VARIANTS.index(name), [CHANNELS.index(c) for c in variant.channels]
                ] = True
            for s, name in enumerate(segments):
                response = cfg.response.get(name)
                if response is None:
                    continue
                for offer_name, mult in response.take_up.items():
                    take_up_mult[s, OFFERS.index(offer_name)] = mult
                plan_keep_mult[s] = response.plan_keep
                for variant_name, scale in response.variants.items():
                    v = VARIANTS.index(variant_name)
                    variant_scale[s, v] = [getattr(scale, f) for f in SCALE_FIELDS]
        return cls(
            cfg,
            offer_channels,
            variant_channels,
            min_dpd,
            take_up,
            take_up_mult,
            variant_scale,
            plan_keep_mult,
            charge_off_dpd=scenario.sim.charge_off_dpd,
            urgency_exponent=0.0 if cfg is None else cfg.settlement.urgency_exponent,
            message_factor=0.0 if cfg is None else cfg.message_take_up_factor,
        )

    def supported(
        self, offer: np.ndarray, variant: np.ndarray, channel: np.ndarray, dpd: np.ndarray
    ) -> np.ndarray:
        """bool [M]: the scenario supports (offer, variant) on the channel at this DPD."""
        return (
            self.offer_channels[offer, channel]
            & self.variant_channels[variant, channel]
            & (dpd >= self.min_dpd[offer])
        )


def urgency(dpd: np.ndarray, charge_off_dpd: int, exponent: float) -> np.ndarray:
    """Settlement urgency in [0, 1]: ``(dpd / charge_off_dpd) ** exponent``."""
    return np.clip(dpd / charge_off_dpd, 0.0, 1.0) ** exponent


def daily_discount_factors(days: np.ndarray, rate_annual: float) -> np.ndarray:
    """Discount factors ``(1 + r) ** (-days / 365)`` for days since the start."""
    return (1.0 + rate_annual) ** (-np.asarray(days, dtype=float) / 365.0)


OFFER_TALK: dict[int, str] = {
    Offer.INSTALMENT_PLAN: "Offer an instalment plan of the amount due",
    Offer.SETTLEMENT: "Offer to settle the balance at a discount",
    Offer.PAYMENT_HOLIDAY: "Offer a payment holiday",
}
"""Talking point per offer (memo)."""

VARIANT_TALK: tuple[str, ...] = (
    "",
    "Tone: empathetic; ask about circumstances first",
    "Tone: firm; state the consequences of non-payment",
)
"""Talking point per variant (memo; standard adds nothing)."""
