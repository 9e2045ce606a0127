"""The messages of the demo's guest conversations (``GET /v1/conversations/{id}/messages``),
built on demand from the runs and escalations of :class:`~._data.DemoData`, so they agree with
them:

- before each run, the guest's message that started it (inbound, 20 s to 3 min before the run;
  an escalated run's is the escalation's ``guest_message``);
- when the run completed with a reply, the agent's reply at ``completed_at`` (its ``response``);
- when an operator reviewed or resolved the run's escalation, the team member's reply at
  ``reviewed_at`` (a dismissed or pending escalation has none);
- in the planted long conversation, the guest writes in several short messages before each run,
  so its thread is longer than one page of 100.

Nothing is sent after the data's ``end``. Ids and texts come from a hash of the conversation and
the run, so a thread is the same on every request and costs nothing until asked for.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ..schema import ACTED_ESCALATION_STATUSES

_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"

_ASKS: dict[str, tuple[str, ...]] = {
    "Reservations": ("Do you have a double room free from the 12th to the 15th?",
                     "Can I change my booking to arrive one day later?",
                     "Is breakfast included in my reservation?",
                     "I'd like to cancel my stay next week, is it free?"),
    "Check-in": ("What time can we check in tomorrow?", "How do I get the key if we arrive after midnight?",
                 "Is there parking at the apartment?", "Can we leave our bags before check-in?"),
    "Billing": ("Can I get an invoice with my company's VAT number?", "I was charged twice for my stay.",
                "Why is there a cleaning fee on my bill?", "Can I pay the balance by bank transfer?"),
    "Concierge": ("Can you recommend a restaurant near the hotel?", "How do we get to the airport from here?",
                  "Can you book us a taxi for 7 AM?"),
    "Housekeeping": ("Can we get extra towels in room 12?", "The shower is not draining.",
                     "Could you skip cleaning our room today?"),
    "Reviews": ("Thanks for a lovely stay!", "The street was very noisy at night."),
}
_MORE = ("Also,", "One more thing:", "Sorry, forgot to say:", "And", "Just to add,", "Oh and")
_DETAILS = ("we are two adults and a baby.", "my booking is under my partner's name.",
            "we arrive by train around 9 PM.", "it's our anniversary!", "I wrote on WhatsApp too.",
            "my phone battery is low, email is better.", "we'd like a quiet room if possible.")
_OPERATORS = (("usr_maria01", "Maria S"), ("usr_joao02", "João P"), ("usr_lucia03", "Lucía G"),
              ("usr_tom04", "Tom B"))
#: Inbound messages per run in the planted long conversation (a thread of more than 100).
LONG_THREAD_PER_RUN = 7


def _hash(*parts: Any) -> int:
    return int.from_bytes(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest(), "big")


def _id(*parts: Any) -> str:
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=30).digest()
    return "ms" + "".join(_ALPHABET[b % 32] for b in digest)


class Threads:
    """The demo's conversations as message threads; built once per :class:`DemoData`, which
    hands in what it knows: a run's detail (its guest and reply: ``detail(data, i)``), the
    escalation table, the guests' escalation asks and its timestamp format."""

    def __init__(self, data: Any, *, detail: Callable[[Any, int], Any], escalations: dict[str, np.ndarray],
                 guest_asks: Sequence[str], iso: Callable[[int], str]) -> None:
        self.data = data
        self.detail, self.table, self.guest_asks, self.iso = detail, escalations, guest_asks, iso
        conversations = np.asarray(data.conversation).astype(str)
        order = np.lexsort((data.created_ms, conversations))
        sorted_ids = conversations[order]
        starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
        ends = np.r_[starts[1:], len(order)]
        self.runs = {str(sorted_ids[s]): order[s:e] for s, e in zip(starts, ends, strict=False)}
        table = escalations
        self.escalation_of = {int(i): k for k, i in enumerate(table["run"])}
        self.long = (data.planted.get("long_conversation") or {}).get("conversation_id")

    def __contains__(self, conversation_id: str) -> bool:
        return conversation_id in self.runs

    def messages(self, conversation_id: str) -> list[dict[str, Any]]:
        """The thread's messages, oldest first (as ``order=asc``)."""
        rows = self.runs.get(conversation_id)
        if rows is None:
            return []
        found: list[tuple[int, int, dict[str, Any]]] = []
        channel = str(self.data.channel[int(rows[0])])  # a thread keeps the channel the guest wrote on
        for i in rows:
            for message in self._around(int(i), conversation_id, channel):
                found.append((message.pop("_ms"), len(found), message))
        end_ms = int(self.data.end.timestamp() * 1000)
        found.sort(key=lambda t: (t[0], t[1]))
        return [m for ms, _, m in found if ms <= end_ms]

    def _around(self, i: int, conversation_id: str, channel: str) -> list[dict[str, Any]]:
        data = self.data
        detail = self.detail(data, i)
        guest = detail.guest
        profile = data.profiles[data.agent_ix[i]].name
        contact = str(data.contact[i])
        h = _hash(data.seed, conversation_id, i)
        created = int(data.created_ms[i])
        k = self.escalation_of.get(i)
        table = self.table if k is not None else None
        if table is not None:
            ask = self.guest_asks[int(table["ask"][k])]
        else:
            asks = _ASKS.get(profile.split(" ")[0], _ASKS["Reservations"])
            ask = asks[h % len(asks)]
        guest_sender = {"user_id": None, "external_id": f"guest_{contact[2:12]}", "name": guest}
        lead = 20_000 + h % 160_000
        count = LONG_THREAD_PER_RUN if conversation_id == self.long else 1
        out = []
        for m in range(count):
            body = ask if m == 0 else f"{_MORE[(h + m) % len(_MORE)]} {_DETAILS[(h // 7 + m) % len(_DETAILS)]}"
            at = created - lead + m * (lead // (count + 1))
            out.append(self._message(conversation_id, i, f"in{m}", "inbound", body, at, guest_sender, channel))
        response = detail.response()
        if str(data.status[i]) == "completed" and response and data.completed_ms[i] >= 0:
            agent = data.agents[data.agent_ix[i]]["name"]
            out.append(self._message(conversation_id, i, "reply", "outbound", response, int(data.completed_ms[i]),
                                     {"user_id": None, "external_id": None, "name": agent}, channel))
        if table is not None and str(table["status"][k]) in ACTED_ESCALATION_STATUSES and table["reviewed"][k] >= 0:
            user_id, name = _OPERATORS[int(table["operator"][k]) % len(_OPERATORS)]
            body = (f"Hi {guest}, this is {name.split(' ')[0]} from the team. I've looked into it and "
                    + ("it's sorted: you'll get a confirmation shortly." if str(table["status"][k]) == "resolved"
                       else "we'll follow up with the property today."))
            out.append(self._message(conversation_id, i, "team", "outbound", body, int(table["reviewed"][k]),
                                     {"user_id": user_id, "external_id": None, "name": name}, channel))
        return out

    def _message(self, conversation_id: str, i: int, key: str, direction: str, body: str, at: int,
                 sender: dict[str, Any], channel: str) -> dict[str, Any]:
        data = self.data
        return {
            "_ms": at,
            "id": _id(data.seed, conversation_id, i, key),
            "workspace_id": data.workspace_id,
            "conversation_id": conversation_id,
            "channel": channel,
            "body": body,
            "direction": direction,
            "status": "sent",
            "sent_at": self.iso(at),
            "created_at": self.iso(at + 1_000 + _hash(key, i) % 2_000),
            "sender": dict(sender),
        }
