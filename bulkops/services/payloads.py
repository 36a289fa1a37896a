"""Operations' payloads (`serialized_data`, `result_serialized_data`) as they are stored,
sealed when payload encryption keys are set, and as responses show them, secrets masked."""

from __future__ import annotations

from bulkops.criteria import Condition, SearchCriteria
from bulkops.errors import InputError
from bulkops.sealing import Sealer
from bulkops.services.redaction import Redactor
from bulkops.settings import Settings

KEYS_SETTING = "BULKOPS_PAYLOAD_ENCRYPTION_KEYS"

PAYLOAD_FIELDS = frozenset({"serialized_data", "result_serialized_data"})

# Conditions that read no more of a payload than whether there is one.
_PRESENCE = frozenset({Condition.NULL, Condition.NOTNULL})


class Payloads:
    def __init__(self, sealer: Sealer, redactor: Redactor) -> None:
        self.sealer = sealer
        self.redactor = redactor

    @classmethod
    def from_settings(cls, settings: Settings) -> Payloads:
        keys = [key.get_secret_value() for key in settings.payload_encryption_keys]
        return cls(Sealer(keys, KEYS_SETTING), Redactor(settings.redact_keys))

    def stored(self, document: str | None) -> str | None:
        """What is written for a payload: sealed with the newest key, or as it is."""
        return None if document is None else self.sealer.seal(document)

    def read(self, stored: str | None) -> str | None:
        """The payload a handler gets: the document as written by submission or handler."""
        return None if stored is None else self.sealer.unseal(stored)

    def shown(self, stored: str | None) -> str | None:
        """The payload as a response shows it: read, its secrets masked."""
        if stored is None:
            return None
        return self.redactor.document(self.sealer.unseal(stored))

    def check_search(self, criteria: SearchCriteria, reads_others: bool) -> None:
        """Refuses a search that filters or sorts on a payload's content when that content is
        ciphertext (SQL cannot read it), or when secrets are masked and the caller reads
        others' bulks (`reads_others`): a match or an order on the stored text would tell
        their masked values bit by bit. A caller limited to its own bulks searches only what
        it sent itself."""
        reasons = []
        if self.sealer.encrypts:
            reasons.append("payloads are encrypted")
        if self.redactor.redacts and reads_others:
            reasons.append("secrets in payloads are masked")
        refused = sorted(_content_fields(criteria) & PAYLOAD_FIELDS)
        if reasons and refused:
            raise InputError(
                '"%fieldName" cannot be used to filter or sort while %reason; only the "null" '
                'and "notnull" conditions apply to it.',
                {"fieldName": refused[0], "reason": " and ".join(reasons)},
            )


def _content_fields(criteria: SearchCriteria) -> set[str]:
    filtered = {
        flt.field
        for group in criteria.filter_groups
        for flt in group.filters
        if flt.condition not in _PRESENCE
    }
    return filtered | {field for field, _ in criteria.effective_sort()}
