"""The response, reflection and tool trace of one demo run, built on demand from a generator
seeded by the run's position (the same every time it is asked for)."""

from __future__ import annotations

import json
import random
import zlib
from datetime import UTC, datetime, timedelta
from typing import Any

from ..schema import UNFINISHED_STATUSES

_FIRST_NAMES = ["Ana", "Ben", "Chloé", "Dmitri", "Emma", "Farah", "Giulia", "Hiro", "Isabel",
                "Jonas", "Kwame", "Lena", "Mateo", "Nora", "Omar", "Priya", "Quentin", "Rosa",
                "Sven", "Tomás", "Uma", "Valentina", "Wei", "Yara", "Zoe"]


_PROPERTIES = ["prop_lisbon_alfama", "prop_porto_ribeira", "prop_madrid_centro",
               "prop_barcelona_born", "prop_seville_triana"]


_ROOM_TYPES = ["Studio", "Double", "Twin", "Suite", "Family Apartment"]


class RunDetail:
    """The response, reflection and tool trace of one run, from a generator of its own."""

    def __init__(self, data: Any, i: int) -> None:
        self.data = data
        self.i = i
        self.rng = random.Random(data.seed * 1_000_003 + i)
        self.profile = data.profiles[data.agent_ix[i]]
        self.status = str(data.status[i])
        self.disposition = data.disposition[i]
        self.rng.randrange(len(_FIRST_NAMES))  # the draw stays, so the rest of the run is as before
        # One guest per conversation: every run (and message) of a thread greets the same name.
        self.guest = _FIRST_NAMES[zlib.crc32(str(data.conversation[i]).encode()) % len(_FIRST_NAMES)]
        self.reservation = f"res_{int(self.rng.randrange(100000, 999999))}"
        self.property = _PROPERTIES[int(self.rng.randrange(len(_PROPERTIES)))]
        created = datetime.fromtimestamp(data.created_ms[i] / 1000, tz=UTC)
        self.check_in = (created + timedelta(days=int(self.rng.randrange(1, 40)))).date()
        self.nights = int(self.rng.randrange(1, 8))

    def _tool_call(self, name: str) -> dict[str, Any]:
        check_out = self.check_in + timedelta(days=self.nights)
        amount = round(float(self.rng.uniform(40, 900)), 2)
        for io in (self._reservation_io, self._stay_io, self._billing_io):
            found = io(name, check_out, amount)
            if found is not None:
                return {"name": name, "input": found[0], "output": found[1]}
        return {"name": name, "input": {}, "output": None}  # pragma: no cover - every profile tool has one

    def _reservation_io(self, name: str, check_out: Any, amount: float) -> tuple[Any, Any] | None:
        """The reservation tools: their input and output (None: not one of them)."""
        r, res, prop = self.rng, self.reservation, self.property
        inp: Any  # arbitrary JSON, as tool inputs and outputs are
        out: Any
        if name == "get_reservation":
            inp = {"reservation_id": res}
            out = {"status": "confirmed", "check_in": str(self.check_in), "check_out": str(check_out),
                   "guests": int(r.randrange(1, 5)), "room_type": _ROOM_TYPES[int(r.randrange(5))],
                   "property_id": prop}
        elif name == "search_reservations":
            inp = {"guest_name": self.guest, "property_id": prop}
            out = {"matches": [{"reservation_id": res, "check_in": str(self.check_in)}]}
        elif name == "check_availability":
            inp = {"property_id": prop, "check_in": str(self.check_in), "check_out": str(check_out),
                   "guests": int(r.randrange(1, 5))}
            out = {"available": bool(r.random() < 0.75),
                   "rooms": [{"room_type": t, "nightly_rate": round(float(r.uniform(70, 320)), 2),
                              "currency": "EUR"} for t in _ROOM_TYPES[: int(r.randrange(1, 4))]]}
        elif name == "modify_reservation":
            inp = {"reservation_id": res, "changes": {"check_out": str(check_out + timedelta(days=1))}}
            out = {"status": "modified", "price_difference": round(float(r.uniform(-80, 250)), 2),
                   "currency": "EUR"}
        elif name == "cancel_reservation":
            inp = {"reservation_id": res, "reason": "guest_request"}
            out = {"status": "cancelled", "refund_amount": amount, "currency": "EUR"}
        else:
            return None
        return inp, out

    def _stay_io(self, name: str, check_out: Any, amount: float) -> tuple[Any, Any] | None:
        """The stay tools (knowledge base, property, guest, check-in, identity, door code)."""
        r, res, prop = self.rng, self.reservation, self.property
        inp: Any  # arbitrary JSON, as tool inputs and outputs are
        out: Any
        if name == "search_knowledge_base":
            query = r.choice(["pet policy", "late checkout", "parking", "breakfast hours",
                              "cancellation policy", "city tax", "luggage storage"])
            # Some agents send the query as a bare string: tool inputs are arbitrary JSON.
            inp = str(query) if r.random() < 0.3 else {"query": str(query), "top_k": 3}
            out = {"results": [{"title": f"{str(query).title()} policy", "score": round(float(r.uniform(0.5, 0.99)), 3),
                                "snippet": f"Our {query} policy: see the house rules for details."}]}
        elif name == "get_property_info":
            topic = str(r.choice(["wifi", "parking", "check_in_time", "amenities", "directions"]))
            inp = {"property_id": prop, "topic": topic}
            out = {"answer": f"Information about {topic.replace('_', ' ')} at {prop}."}
        elif name == "get_guest_profile":
            inp = {"contact_id": str(self.data.contact[self.i])}
            out = {"name": self.guest, "language": str(r.choice(["en", "es", "pt", "de", "fr"])),
                   "loyalty_tier": str(r.choice(["none", "silver", "gold"])), "stays": int(r.randrange(0, 12))}
        elif name == "get_check_in_instructions":
            inp = {"reservation_id": res}
            out = {"check_in_time": "15:00", "self_check_in": True, "parking": bool(r.random() < 0.5)}
        elif name == "verify_identity":
            inp = {"reservation_id": res, "method": "document_upload"}
            out = {"verified": bool(r.random() < 0.85)}
        elif name == "generate_door_code":
            inp = {"reservation_id": res, "valid_from": f"{self.check_in}T15:00:00Z",
                   "valid_to": f"{check_out}T11:00:00Z"}
            out = {"code_issued": True, "expires_at": f"{check_out}T11:00:00Z"}
        else:
            return None
        return inp, out

    def _billing_io(self, name: str, check_out: Any, amount: float) -> tuple[Any, Any] | None:
        """The billing and action tools (folio, refund, invoice, housekeeping, message, escalation)."""
        r, res, prop = self.rng, self.reservation, self.property
        inp: Any  # arbitrary JSON, as tool inputs and outputs are
        out: Any
        if name == "get_folio":
            inp = {"reservation_id": res}
            out = {"balance": amount, "currency": "EUR",
                   "items": [{"description": "Room", "amount": round(amount * 0.9, 2)},
                             {"description": "City tax", "amount": round(amount * 0.1, 2)}]}
        elif name == "process_refund":
            inp = {"reservation_id": res, "amount": round(amount * 0.3, 2), "currency": "EUR"}
            out = {"refund_id": f"rf_{int(r.randrange(10**6, 10**7))}", "status": "pending"}
        elif name == "send_invoice":
            inp = {"reservation_id": res, "email": f"{self.guest.lower()}@example.com"}
            out = {"sent": True}
        elif name == "create_housekeeping_task":
            inp = {"property_id": prop, "task": str(r.choice(["extra_towels", "cleaning", "fix_ac", "crib"]))}
            out = {"task_id": f"hk_{int(r.randrange(10**5, 10**6))}", "eta_minutes": int(r.randrange(10, 90))}
        elif name == "send_message":
            inp = {"channel": str(self.data.channel[self.i]), "text": "Message sent to the guest."}
            out = {"message_id": f"msg_{int(r.randrange(10**6, 10**7))}", "delivered": True}
        elif name == "create_escalation":
            inp = {"reason": self.data.disposition_reason[self.i] or "needs review", "priority": "normal"}
            out = {"escalation_id": f"esc_{int(r.randrange(10**5, 10**6))}", "status": "pending"}
        else:
            return None
        return inp, out

    def _pick_tools(self, count: int) -> list[str]:
        """Weighted picks, without repeats while the agent has tools left, in the agent's natural
        order (look-ups before changes)."""
        tools, weights = list(self.profile.tools), list(self.profile.tool_weights)
        picked: list[int] = []
        while len(picked) < count:
            pool = [k for k in range(len(tools)) if k not in picked] or list(range(len(tools)))
            picked.append(self.rng.choices(pool, weights=[weights[k] for k in pool])[0])
        return [tools[k] for k in sorted(picked)]

    def tool_trace(self) -> list[dict[str, Any]] | None:
        if self.status == "accepted":
            return None
        count = int(self.data.calls[self.i])
        if self.disposition == "escalated":
            count = max(0, count - 1)
        names = self._pick_tools(count)
        trace = [self._tool_call(n) for n in names]
        loop = getattr(self.data, "repeat_tool", None)
        if loop is not None and loop[self.i] is not None:
            # Planted: the agent checks the same availability again and again.
            at = next((k for k, item in enumerate(trace) if item["name"] == loop[self.i]), None)
            if at is None:
                trace.append(self._tool_call(loop[self.i]))
                at = len(trace) - 1
            trace[at + 1:at + 1] = [json.loads(json.dumps(trace[at])) for _ in range(2)]
        if self.disposition == "escalated":
            trace.append(self._tool_call("create_escalation"))
        for item in trace:
            if self.profile.name == "Concierge":
                # This integration reports timings: trace items may carry extra keys.
                item["duration_ms"] = int(self.rng.randrange(40, 2500))
        if self.status == "failed" and trace and "timed out" in (self.data.error[self.i] or ""):
            trace[-1]["output"] = None
            trace[-1]["error"] = "timeout after 30000 ms"
        return trace

    def response(self) -> str | None:
        if self.status != "completed":
            return None
        g = self.guest
        by_disposition = {
            "resolved": [
                f"Hi {g}, you're all set: your reservation {self.reservation} is confirmed for {self.check_in:%B %d}. Let me know if you need anything else!",
                f"Hi {g}, done! I've taken care of that for you. Anything else I can help with?",
                f"Hi {g}, here is what you asked for. Check-in is from 3 PM and your details are on the way.",
            ],
            "escalated": [
                f"Thanks {g}, I've passed this to our team, who will get back to you shortly.",
                f"Hi {g}, I need to check this with the property team. We'll reply within the hour.",
            ],
            "awaiting_guest": [f"Hi {g}, could you share your reservation number so I can look this up?"],
            "handed_off": [f"Hi {g}, I'm connecting you with a member of our team now."],
            "no_action_needed": [f"Thank you {g}, have a wonderful stay!"],
            "spam": [""],
        }
        options = by_disposition.get(self.disposition, [f"Hi {g}, thanks for your message."])
        return options[int(self.rng.randrange(len(options)))]

    def reflection(self) -> str | None:
        if self.status in UNFINISHED_STATUSES:
            return None
        if self.status == "failed":
            return "The run stopped before a reply could be written." if self.rng.random() < 0.5 else None
        reason = self.data.disposition_reason[self.i]
        return {
            "resolved": f"The guest's request could be handled with the available tools ({reason}), so I answered directly instead of escalating.",
            "escalated": f"Escalating: {reason} Policy does not allow me to decide this alone.",
            "awaiting_guest": f"I could not identify the booking ({reason}); asked the guest for details.",
            "handed_off": f"Handed off to a human ({reason}).",
            "no_action_needed": f"No reply needed beyond a courtesy message ({reason}).",
            "spam": f"Message classified as spam ({reason}); no action taken.",
        }.get(self.disposition, f"Disposition {self.disposition}: {reason}.")
