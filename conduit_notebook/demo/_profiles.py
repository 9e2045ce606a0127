"""The demo's agent profiles: what each kind of agent does, how it ends its runs, its tools,
timings and costs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AgentProfile:
    name: str
    description: str
    share: float
    tools: tuple[str, ...]
    tool_weights: tuple[float, ...]
    mean_calls: float
    dispositions: dict[str, float]
    resolved_reasons: tuple[str, ...]
    escalation_reasons: tuple[str, ...]
    failure_rate: float
    input_median: float
    output_median: float
    price_in: float  # USD per token
    price_out: float
    mode: str = "autopilot"


PROFILES: tuple[AgentProfile, ...] = (
    AgentProfile(
        name="Reservations",
        description="Handles booking, modification and cancellation requests.",
        share=0.40,
        tools=("get_reservation", "search_reservations", "check_availability",
               "modify_reservation", "cancel_reservation", "search_knowledge_base"),
        tool_weights=(0.3, 0.1, 0.2, 0.15, 0.08, 0.17),
        mean_calls=3.2,
        dispositions={"resolved": 0.66, "escalated": 0.16, "awaiting_guest": 0.1,
                      "handed_off": 0.04, "no_action_needed": 0.03, "spam": 0.01},
        resolved_reasons=("reservation_confirmed", "booking_modified", "booking_cancelled",
                          "answered_from_knowledge", "availability_shared"),
        escalation_reasons=(
            "Group booking over 8 rooms needs the sales team.",
            "Guest is requesting a refund outside the cancellation policy.",
            "Requested dates are blocked for maintenance; property team must confirm.",
            "Rate dispute: guest saw a lower price on another channel.",
        ),
        failure_rate=0.035,
        input_median=2300,
        output_median=310,
        price_in=3e-6,
        price_out=15e-6,
    ),
    AgentProfile(
        name="Check-in",
        description="Sends check-in instructions, door codes and early check-in answers.",
        share=0.30,
        tools=("get_reservation", "get_check_in_instructions", "verify_identity",
               "generate_door_code", "get_property_info", "search_knowledge_base"),
        tool_weights=(0.25, 0.2, 0.15, 0.12, 0.13, 0.15),
        mean_calls=3.6,
        dispositions={"resolved": 0.58, "escalated": 0.22, "awaiting_guest": 0.12,
                      "handed_off": 0.04, "no_action_needed": 0.04},
        resolved_reasons=("check_in_instructions_sent", "door_code_issued",
                          "answered_from_knowledge", "parking_info_shared"),
        escalation_reasons=(
            "Early check-in availability requires property team confirmation.",
            "Door code did not work; on-site staff needed.",
            "Identity could not be verified automatically.",
            "Guest reports the room was not ready on arrival.",
        ),
        failure_rate=0.05,
        input_median=2000,
        output_median=260,
        price_in=3e-6,
        price_out=15e-6,
    ),
    AgentProfile(
        name="Billing",
        description="Answers questions about folios, invoices, deposits and refunds.",
        share=0.18,
        tools=("get_reservation", "get_folio", "process_refund", "send_invoice",
               "search_knowledge_base"),
        tool_weights=(0.25, 0.3, 0.12, 0.15, 0.18),
        mean_calls=4.4,
        dispositions={"resolved": 0.52, "escalated": 0.3, "awaiting_guest": 0.1,
                      "handed_off": 0.06, "no_action_needed": 0.02},
        resolved_reasons=("invoice_sent", "refund_processed", "folio_explained",
                          "answered_from_knowledge"),
        escalation_reasons=(
            "Payment failed twice; card needs to be verified by staff.",
            "Chargeback notice received; finance team must respond.",
            "Guest disputes a damage fee.",
            "Refund above the automatic approval limit.",
        ),
        failure_rate=0.06,
        input_median=3100,
        output_median=380,
        price_in=5e-6,
        price_out=25e-6,
    ),
    AgentProfile(
        name="Concierge",
        description="Recommends restaurants, arranges transfers and answers local questions.",
        share=0.08,
        tools=("get_guest_profile", "get_property_info", "search_knowledge_base", "send_message"),
        tool_weights=(0.2, 0.3, 0.35, 0.15),
        mean_calls=2.6,
        dispositions={"resolved": 0.72, "escalated": 0.08, "no_action_needed": 0.12,
                      "handed_off": 0.03, "spam": 0.05},
        resolved_reasons=("recommendation_sent", "transfer_booked", "answered_from_knowledge"),
        escalation_reasons=("Guest asked for a special occasion setup that needs staff.",),
        failure_rate=0.02,
        input_median=1600,
        output_median=420,
        price_in=0.8e-6,
        price_out=4e-6,
        mode="copilot",
    ),
    AgentProfile(
        name="Housekeeping",
        description="Takes requests for towels, cleaning, amenities and maintenance.",
        share=0.04,
        tools=("get_reservation", "create_housekeeping_task", "send_message"),
        tool_weights=(0.35, 0.45, 0.2),
        mean_calls=2.4,
        dispositions={"resolved": 0.7, "escalated": 0.2, "awaiting_guest": 0.06,
                      "no_action_needed": 0.04},
        resolved_reasons=("task_created", "request_logged"),
        escalation_reasons=("Maintenance issue (leak or outage) needs a technician.",
                            "Complaint about room cleanliness needs a manager."),
        failure_rate=0.03,
        input_median=1400,
        output_median=200,
        price_in=0.8e-6,
        price_out=4e-6,
    ),
    AgentProfile(
        name="Reviews",
        description="Drafts replies to guest reviews and feedback.",
        share=0.03,
        tools=("get_guest_profile", "get_reservation", "search_knowledge_base"),
        tool_weights=(0.3, 0.3, 0.4),
        mean_calls=2.0,
        dispositions={"resolved": 0.8, "escalated": 0.12, "no_action_needed": 0.08},
        resolved_reasons=("review_reply_drafted",),
        escalation_reasons=("Negative review mentions a safety issue.",),
        failure_rate=0.02,
        input_median=2600,
        output_median=520,
        price_in=3e-6,
        price_out=15e-6,
        mode="copilot",
    ),
)
