"""Consent before anything leaves the machine: what will be sent, where, and what it may cost.

Qt-free, shared by the consent dialog and the CLI prompt. The flow:

1. ``prepare_consent`` builds a ``ConsentRequest`` for a corpus, a session and a hosted
   backend: every document with its exact token count, files that look like secrets left out
   by default (``.env``, private keys, credential files, documents flagged ``secret``), the
   packed prefix and whether it fits, and the estimated cost of the first question.
2. The user looks at it (``summary_lines``) and may include a left-out file or leave a
   document out (``with_choice``: a new request, counted again).
3. ``ConsentLedger.grant`` records the answer for this session and endpoint, and
   ``HostedBackend.permit`` unlocks exactly that prefix (endpoint + model + text fingerprint).
   A changed corpus, model or endpoint needs a new consent.

``fallback_offer`` says when the hosted backend should be offered because the local one
cannot serve (no model, does not fit, load failed); accepting it still goes through consent.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

from longdesk.engine.backends.base import AskOptions, FailureKind
from longdesk.engine.backends.hosted import HostedBackend
from longdesk.engine.backends.hosted_prices import TurnCost
from longdesk.engine.context.pack import document_block, pack
from longdesk.engine.context.plan import ContextPlan
from longdesk.engine.corpus.model import Corpus, Document

_SECRET_NAMES = re.compile(
    r"(^|/)(\.env(\..*)?|\.netrc|\.npmrc|\.pypirc|\.pgpass|\.git-credentials|credentials(\.\w+)?|"
    r"secrets?(\.\w+)?|id_(rsa|dsa|ecdsa|ed25519)|.*\.(pem|key|p12|pfx|jks|keystore|kdbx|ovpn))$",
    re.IGNORECASE,
)
_SECRET_TEXT = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----|\bAKIA[0-9A-Z]{16}\b|\bsk-[A-Za-z0-9_-]{20,}\b|"
    r"\bgh[pousr]_[A-Za-z0-9]{30,}\b|\bxox[abpr]-[A-Za-z0-9-]{10,}"
)
# Text that every match of _SECRET_TEXT contains: a document with none of it holds no key.
_SECRET_MARKS = ("-----BEGIN ", "AKIA", "sk-", "ghp_", "gho_", "ghu_", "ghs_", "ghr_", "xox")
_UNKNOWN_WINDOW = 10**9


def looks_secret(doc: Document) -> bool:
    """A document that probably holds credentials: flagged, named like one, or containing a key.

    The key patterns are searched segment by segment only in a document whose text holds one
    of their fixed parts (a plain substring test over the whole text, much faster than the
    pattern over tens of thousands of segments of a long book).
    """
    if "secret" in doc.flags:
        return True
    name = PurePosixPath(doc.name.replace("\\", "/"))
    if _SECRET_NAMES.search(str(name)):
        return True
    if not doc.table.may_contain(_SECRET_MARKS):  # in place: no copy of a long book's text
        return False
    return any(_SECRET_TEXT.search(seg.text) for seg in doc.segments)


@dataclass(frozen=True, slots=True)
class ConsentItem:
    """One document of the corpus as the consent shows it."""

    doc_id: str
    name: str
    tokens: int
    secret: bool
    included: bool


@dataclass(frozen=True, slots=True)
class ConsentRequest:
    """Everything the user agrees to in one consent.

    Attributes:
        session_id: the session the consent is for.
        endpoint: base URL the corpus goes to; ``host`` is its host name.
        model: model name at the endpoint.
        items: every document, included or not.
        plan: the packed prefix of the included documents (what is sent).
        prompt_tokens: tokens of the first request (prefix + template + a question).
        fits: the request fits the model's context; ``budget`` says it in words.
        estimate: upper estimate of the first question's cost, None when unknown.
        price_note: which price table, and its date.
        notes: about the endpoint (e.g. the hosted Flash is V4.1-Flash).
        fingerprint: what ``HostedBackend.permit`` unlocks.
    """

    session_id: str
    endpoint: str
    host: str
    model: str
    items: tuple[ConsentItem, ...]
    plan: ContextPlan
    prompt_tokens: int
    fits: bool
    budget: str
    estimate: TurnCost | None
    price_note: str
    notes: tuple[str, ...]
    fingerprint: str
    options: AskOptions = field(default_factory=AskOptions)

    @property
    def included(self) -> tuple[ConsentItem, ...]:
        return tuple(i for i in self.items if i.included)

    @property
    def left_out(self) -> tuple[ConsentItem, ...]:
        return tuple(i for i in self.items if not i.included)

    def summary_lines(self) -> list[str]:
        """The consent text: destination, documents, left-out files, tokens, cost, notes."""
        lines = [f"Send to {self.host} ({self.endpoint}), model {self.model}:"]
        for item in self.included:
            lines.append(f"  {item.doc_id:<5} {item.name}  {item.tokens:,} tokens")
        if self.left_out:
            lines.append("Left out (not sent):")
            for item in self.left_out:
                why = "looks like a secret (keys, credentials)" if item.secret else "left out by choice"
                lines.append(f"  {item.doc_id:<5} {item.name}  {why}")
        return lines + self.totals_lines()

    def totals_lines(self) -> list[str]:
        """Tokens per request, budget, estimated cost and notes (the end of the consent text)."""
        lines = [
            f"In all: {len(self.included)} document(s), {self.prompt_tokens:,} tokens per request.",
            f"Budget: {self.budget}",
        ]
        if self.estimate is not None:
            lines.append(
                f"Estimated cost of the first question: at most {self.estimate.describe()}; {self.price_note}"
            )
        else:
            lines.append("Cost: unknown for this endpoint (no price table for this model).")
        lines.extend(f"Note: {n}" for n in self.notes)
        return lines


def prepare_consent(
    session_id: str,
    corpus: Corpus,
    backend: HostedBackend,
    options: AskOptions,
    *,
    include: frozenset[str] = frozenset(),
    exclude: frozenset[str] = frozenset(),
    instructions: str | None = None,
) -> ConsentRequest:
    """Count what would be sent to ``backend`` and estimate what it costs. Sends nothing.

    Args:
        session_id: the session asking.
        corpus: all documents the user chose.
        backend: the hosted backend (its tokenizer counts; its config names the endpoint).
        options: thinking mode and output size (they change budget and cost).
        include: doc ids of secret-looking files the user chose to send anyway.
        exclude: doc ids the user chose to leave out.
        instructions: the citing contract (default: the bundled one).
    """
    info = backend.describe()
    chosen: list[Document] = []
    items: list[tuple[Document, bool]] = []
    for doc in corpus.documents:
        secret = looks_secret(doc)
        keep = doc.doc_id not in exclude and (not secret or doc.doc_id in include)
        items.append((doc, secret))
        if keep:
            chosen.append(doc)
    window = info.context_window or _UNKNOWN_WINDOW
    counter = backend.counter()  # cached by content: an unchanged document is not counted again
    plan = pack(
        Corpus.of(chosen, corpus.issues),
        counter,
        window,
        instructions=instructions,
        reserved_output=backend.output_reserve(options),
    )
    counted = {s.doc_id: s.tokens for s in plan.spans}
    consent_items = tuple(
        ConsentItem(
            doc.doc_id,
            doc.name,
            counted.get(doc.doc_id) or backend.count_tokens(document_block(doc)),
            secret,
            doc.doc_id in counted,
        )
        for doc, secret in items
    )
    counter.flush()  # the counts are kept for the next window or process at once
    counter.release()  # the tokenizer's working memory, some 7 MiB after a million tokens
    prompt_tokens = backend.request_tokens(plan, (), "")
    too_big = backend.check_fits(prompt_tokens, options)
    budget = plan.budget.describe() if info.context_window else "the server's context size is not known"
    if too_big is not None:
        budget = too_big.message
    prices = backend.prices
    return ConsentRequest(
        session_id=session_id,
        endpoint=info.endpoint,
        host=backend.config.host,
        model=info.name,
        items=consent_items,
        plan=plan,
        prompt_tokens=prompt_tokens,
        fits=too_big is None,
        budget=budget,
        estimate=backend.estimate(plan, options),
        price_note=prices.describe() if prices is not None else "",
        notes=tuple(n for n in info.notes if not n.startswith("what leaves")),
        fingerprint=backend.fingerprint(plan),
        options=options,
    )


def with_choice(
    request: ConsentRequest, corpus: Corpus, backend: HostedBackend, doc_id: str, send: bool
) -> ConsentRequest:
    """The request again after the user ticked (``send``) or unticked one document."""
    include = frozenset(i.doc_id for i in request.items if i.secret and i.included)
    exclude = frozenset(i.doc_id for i in request.items if not i.secret and not i.included)
    if send:
        include, exclude = include | {doc_id}, exclude - {doc_id}
    else:
        include, exclude = include - {doc_id}, exclude | {doc_id}
    return prepare_consent(
        request.session_id,
        corpus,
        backend,
        request.options,
        include=include,
        exclude=exclude,
        instructions=request.plan.instructions,
    )


@dataclass(frozen=True, slots=True)
class ConsentGrant:
    """A recorded yes: this session may send this prefix to this endpoint."""

    session_id: str
    endpoint: str
    model: str
    fingerprint: str
    documents: tuple[str, ...]
    granted_at: str


@dataclass(slots=True)
class ConsentLedger:
    """The consents given, per session and endpoint (kept with the session, never global)."""

    grants: dict[tuple[str, str], ConsentGrant] = field(default_factory=dict)

    def grant(self, request: ConsentRequest, backend: HostedBackend | None = None) -> ConsentGrant:
        """Record the user's yes and, when given, unlock ``backend`` for exactly this prefix."""
        if not request.fits:
            raise ValueError(f"cannot agree to a request that does not fit: {request.budget}")
        g = ConsentGrant(
            request.session_id,
            request.endpoint,
            request.model,
            request.fingerprint,
            tuple(i.name for i in request.included),
            dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )
        self.grants[(request.session_id, request.endpoint)] = g
        if backend is not None:
            backend.permit(request.fingerprint)
        return g

    def covers(self, session_id: str, endpoint: str, fingerprint: str) -> bool:
        g = self.grants.get((session_id, endpoint.rstrip("/")))
        return g is not None and g.fingerprint == fingerprint

    def revoke(self, session_id: str, endpoint: str) -> None:
        self.grants.pop((session_id, endpoint.rstrip("/")), None)

    def to_json(self) -> str:
        return json.dumps([_grant_dict(g) for g in self.grants.values()], indent=1)

    @staticmethod
    def from_json(text: str) -> ConsentLedger:
        """Read grants back; malformed entries are dropped (they only cost a new question)."""
        ledger = ConsentLedger()
        try:
            raw = json.loads(text)
        except ValueError:
            return ledger
        for entry in raw if isinstance(raw, list) else []:
            try:
                g = ConsentGrant(**{**entry, "documents": tuple(entry["documents"])})
            except (TypeError, KeyError):
                continue
            ledger.grants[(g.session_id, g.endpoint)] = g
        return ledger


def _grant_dict(g: ConsentGrant) -> dict[str, Any]:
    return {
        "session_id": g.session_id,
        "endpoint": g.endpoint,
        "model": g.model,
        "fingerprint": g.fingerprint,
        "documents": list(g.documents),
        "granted_at": g.granted_at,
    }


@dataclass(frozen=True, slots=True)
class FallbackOffer:
    """The local backend cannot serve; the hosted one could, after consent."""

    reason: str
    endpoint_label: str

    def message(self) -> str:
        return (
            f"The local model cannot serve this: {self.reason}. "
            f"{self.endpoint_label} can, if you agree to send the documents there."
        )


_FALLBACK_KINDS = frozenset({FailureKind.MODEL, FailureKind.MEMORY, FailureKind.CONTEXT})


def fallback_offer(kind: FailureKind, reason: str, endpoint_label: str) -> FallbackOffer | None:
    """An offer when the local failure is one the hosted backend can help with."""
    if kind not in _FALLBACK_KINDS or not endpoint_label:
        return None
    return FallbackOffer(reason.rstrip("."), endpoint_label)
