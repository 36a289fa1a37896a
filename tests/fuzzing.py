"""Hypothesis strategies for what clients send, plausible and broken: query strings, paths,
headers and bodies (JSON and XML). Shared by the parsers' tests and the HTTP fuzz suites.

`make fuzz` sets HYPOTHESIS_PROFILE=fuzz: the suites then try FUZZ_EXAMPLES inputs each, at
random; otherwise a few hundred, the same ones every run.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from bulkops.criteria import Condition
from bulkops.searchable import SEARCHABLE_FIELDS, FieldKind
from tests.servers import RunningServer, start_server

FUZZ_PROFILE = "fuzz"
FUZZ_EXAMPLES = int(os.environ.get("BULKOPS_FUZZ_EXAMPLES", "50000"))
"""Inputs each fuzz suite tries under `make fuzz`."""
FUZZING = os.environ.get("HYPOTHESIS_PROFILE") == FUZZ_PROFILE
_SUPPRESSED = [
    HealthCheck.function_scoped_fixture,
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
]


def fuzz_settings(short_examples: int, fuzz_examples: int = FUZZ_EXAMPLES) -> settings:
    """Settings of a fuzz suite: `short_examples` reproducible inputs, or `fuzz_examples` at
    random under the fuzz profile."""
    if FUZZING:
        return settings(
            max_examples=fuzz_examples, deadline=None, suppress_health_check=_SUPPRESSED
        )
    return settings(
        max_examples=short_examples,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=_SUPPRESSED,
    )


# searchCriteria query strings ----------------------------------------------------------------

SPELLINGS = {
    "filter_groups": ["filter_groups", "filterGroups", "FilterGroups", "FILTER_GROUPS"],
    "filters": ["filters", "Filters"],
    "field": ["field", "Field", "FIELD"],
    "value": ["value", "Value"],
    "condition_type": ["condition_type", "conditionType", "ConditionType", "conditiontype"],
    "sort_orders": ["sort_orders", "sortOrders", "SortOrders"],
    "direction": ["direction", "Direction"],
    "page_size": ["page_size", "pageSize", "PageSize"],
    "current_page": ["current_page", "currentPage", "CURRENT_PAGE"],
}
"""Each property of searchCriteria as clients spell it (Magento accepts snake and camel case)."""


def spellings(*names: str) -> st.SearchStrategy[str]:
    return st.sampled_from([spelling for name in names for spelling in SPELLINGS[name]])


ODD_KEYS = ["0", "", "01", "-1", " ", "foo", "filter", "filterGroup", "x]y", "a[b", "%5D", "\u212a"]
KEYS = spellings(*SPELLINGS) | st.sampled_from(ODD_KEYS)
ODD_VALUES = st.one_of(
    st.sampled_from(["", "0", "-1", "1,2", " 3 , x", "2024-13-01", "%", "(", "a{2,1}", "\\"]),
    st.sampled_from(["%00", "%ZZ", "%C3%A9", "%FF", "+", "&", "=", "[]", "(?i"]),
    st.integers(-(2**70), 2**70).map(str),
    st.text(max_size=6),
)
FIELDS = st.sampled_from(list(SEARCHABLE_FIELDS))
CONDITIONS = st.sampled_from([c.value for c in Condition] + ["EQ", "In", ""])
TEXT_FIELDS = [name for name, kind in SEARCHABLE_FIELDS.items() if kind is FieldKind.TEXT]
TEXT_CONDITIONS = ["regexp", "regexp", "in", "nin", "like", "finset", "fulltext"]

# Regular expressions: valid, invalid, and valid in Python but not in every database. Groups
# are quantified too (`(a|b)+` after `a+`: nested quantifiers), which a backtracking engine
# would take exponential time over; SQLite matches with RE2, the servers within the
# statement time limit.
_REGEXP_ATOMS = st.sampled_from(
    ["a", "b", "0", "-", ".", "\\d", "\\w", "[0-9a-f]", "[^x]", "é", "中", "\\.", "(a|b)", "(?:ab)"]
)
_QUANTIFIERS = st.sampled_from(["*", "+", "?", "{2}", "{1,3}", "{0,}", "*?"])
_REGEXP_SPECIALS = st.sampled_from(
    ["(", "[a-", "a**", "(?P<x>a)(?P<x>b)", "\\", "a{2,1}", "(?i", "a{1,256}", "(?a)x",
     "\\N{DIGIT ONE}", "(?i)A", "[[:alpha:]]", "\\p{L}", "a{,3}", "(?<=a)b", "\\1(a)"]
)  # fmt: skip


@st.composite
def regexps(draw: st.DrawFn) -> str:
    atoms = draw(st.lists(_REGEXP_ATOMS, max_size=6))
    for index in draw(st.lists(st.integers(0, max(len(atoms) - 1, 0)), max_size=2, unique=True)):
        if atoms:
            atoms[index] += draw(_QUANTIFIERS)
    anchors = draw(st.sampled_from([("", ""), ("^", ""), ("", "$"), ("^", "$")]))
    return anchors[0] + "".join(atoms) + anchors[1]


def _number_list(size: int) -> str:
    return ",".join(str(number) for number in range(size))


FILTER_VALUES = st.one_of(
    st.sampled_from(
        ["3", " 1, 2 ", "2024-01-02 03:04:05", "2024-01-02T03:04Z", "%exists%", "^a.*b$", ""]
    ),
    regexps(),
    _REGEXP_SPECIALS,
    st.sampled_from([str(2**63), str(-(2**63) - 1), "1e308", "9" * 40, "0x10", "NaN"]),
)
# Long lists for `in`, up to beyond what one statement may bind on PostgreSQL (32,767
# parameters); a URL holds no more than 64 KiB, so the longest has empty elements.
LONG_LISTS = st.sampled_from([40, 1000, 10_000]).map(_number_list) | st.just("," * 33_000)


def query_strings(odd: bool) -> st.SearchStrategy[str]:
    """searchCriteria query strings: plausible ones, or with odd keys, values and encodings
    mixed in (`odd`), so that both the accepting and the rejecting paths are exercised."""

    def mostly(plausible: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
        return st.one_of(plausible, plausible, plausible, ODD_VALUES) if odd else plausible

    def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return strategy | st.none()

    odd_property = maybe(st.tuples(KEYS, ODD_VALUES)) if odd else st.none()
    value = st.tuples(spellings("value"), mostly(FILTER_VALUES))
    index = st.sampled_from(["0", "1", "7", "a", "01", "-1"] + (["", " "] if odd else []))
    sizes = st.sampled_from(["5", "0", "1", "300", "2147483647"]) if odd else st.just("5")
    # Each bundle is (path prefix, properties): one pair per property, under the prefix.
    bundles = [
        st.tuples(
            st.tuples(spellings("filter_groups"), index, spellings("filters"), index),
            st.tuples(
                st.tuples(spellings("field"), mostly(FIELDS)),
                maybe(value) if odd else value,
                maybe(st.tuples(spellings("condition_type"), mostly(CONDITIONS))),
                odd_property,
            ),
        ),
        st.tuples(
            st.tuples(spellings("sort_orders"), index),
            st.tuples(
                maybe(st.tuples(spellings("field"), mostly(FIELDS))),
                maybe(st.tuples(spellings("direction"), mostly(st.sampled_from(["asc", "DESC"])))),
            ),
        ),
        st.tuples(
            st.just(()),
            st.tuples(st.tuples(spellings("page_size", "current_page"), mostly(sizes))),
        ),
        # Text conditions are where databases differ most: offered on their own as well.
        st.tuples(
            st.tuples(spellings("filter_groups"), index, spellings("filters"), index),
            st.tuples(
                st.tuples(spellings("field"), st.sampled_from(TEXT_FIELDS)),
                st.tuples(spellings("value"), FILTER_VALUES | LONG_LISTS),
                st.tuples(spellings("condition_type"), st.sampled_from(TEXT_CONDITIONS)),
            ),
        ),
    ]
    if odd:
        bundles.append(st.tuples(st.lists(KEYS, max_size=18).map(tuple), st.tuples(odd_property)))
    bases = ["searchCriteria", "searchCriteria", "search_criteria"] + (
        ["x", "", " "] if odd else []
    )
    brackets = [("[", "]"), ("%5B", "%5D"), ("%5b", "%5d")] + ([("[", "")] if odd else [])
    forms = ["quoted", "quoted", "raw"] + (["missing"] if odd else [])
    pairs = st.builds(
        _pairs,
        st.sampled_from(bases),
        st.one_of(bundles),
        st.sampled_from(brackets),
        st.sampled_from(forms),
    )
    return st.lists(pairs, max_size=6).map(
        lambda bundles: "&".join(pair for pairs in bundles for pair in pairs)
    )


def _pairs(
    base: str, bundle: tuple[tuple[str, ...], tuple[Any, ...]], brackets: str, form: str
) -> list[str]:
    prefix, properties = bundle
    open_, close = brackets
    pairs = []
    for key, value in filter(None, properties):
        name = base + "".join(f"{open_}{segment}{close}" for segment in (*prefix, key))
        if form == "missing":
            pairs.append(name)
        else:
            pairs.append(f"{name}={quote(value, safe='') if form == 'quoted' else value}")
    return pairs


SEARCH_QUERY_STRINGS = query_strings(odd=False) | query_strings(odd=True)

_QUERY_ALPHABET = st.sampled_from(
    [b"a", b"b", b"0", b"1", b"[", b"]", b"%5B", b"%5d", b"=", b"&", b"+", b" ", b".", b"%"]
) | st.sampled_from([b"%00", b"%ff", b"%C3", b"\x00", b"\xff", b"-", b"9223372036854775807"])
QUERY_BYTES = st.one_of(
    st.binary(max_size=300), st.lists(_QUERY_ALPHABET, max_size=120).map(b"".join)
)
"""Raw query strings: any bytes, and the pieces parsers trip on (brackets, escapes, NULs,
invalid UTF-8)."""

# `?fields=` (Magento's partial responses) and `?services=` (the schemas' selection).
_FIELDS_PIECES = st.sampled_from(
    ["items", "id", "status", "[", "]", ",", "operations_list", "bulk_id", "total_count",
     "search_criteria", "*", " ", "%5B", "é", "message", "parameters"]
)  # fmt: skip
OTHER_QUERY_STRINGS = st.one_of(
    st.lists(_FIELDS_PIECES, max_size=14).map(lambda pieces: "fields=" + "".join(pieces)),
    st.sampled_from(["services=all", "services=", "services=asynchronousOperationsBulkStatusV1"])
    | st.text(max_size=20).map(lambda text: "services=" + quote(text)),
    st.sampled_from(["storeCodes[]=default", "storeCodes[]=", "storeCodes=x", "storeCodes[][]=a"]),
)
QUERY_STRINGS = st.one_of(
    SEARCH_QUERY_STRINGS,
    QUERY_BYTES.map(lambda raw: raw.decode("latin-1")),
    OTHER_QUERY_STRINGS,
)
"""Any query string a client may send to any route."""

# Paths ----------------------------------------------------------------------------------------

KNOWN_BULK_UUID = "aaaaaaaa-0000-4000-8000-000000000001"
"""A bulk the fuzz suites' servers hold, so that paths naming it reach past the lookup."""
_ODD_SEGMENTS = ["", ".", "..", "%2e%2e", "%2E.", "%2F", "..%2F..", "%00", "%ff", "%", "é"]
_ODD_SEGMENTS += ["a" * 300, "'", '"', "<x>", "9" * 25, "-1", "1e3", "0x1", " ", "%20", ";x"]
SEGMENTS = st.one_of(
    st.sampled_from([KNOWN_BULK_UUID, "00000000-0000-0000-0000-000000000000", "nope", "1", "3"]),
    st.sampled_from(_ODD_SEGMENTS),
    st.uuids().map(str),
    st.text(max_size=12),
)
"""Values of path parameters: uuids, ids, statuses, SKUs, traversal and odd encodings."""
STORE_CODES = st.sampled_from(["default", "all", "DEFAULT", "admin", "nope", "V2", "rest"]) | (
    st.sampled_from(_ODD_SEGMENTS)
)
_ROOTS = st.sampled_from(
    ["V1", "V1", "async/V1", "async/bulk/V1", "v1", "async", "async/bulk", "async/bulk/v1"]
)
_ROUTES = st.sampled_from(
    [
        "bulk", "bulk/{}/status", "bulk/{}/detailed-status", "bulk/{}/operation-status/{}",
        "bulk/{}/retry", "bulk/{}", "bulk/{}/webhooks", "bulk/facets", "bulk/retry",
        "store/websites", "store/storeGroups", "store/storeViews", "store/storeConfigs",
        "bulk/changes", "bulk/{}/failed", "bulk/{}/resubmit", "customers", "customers/{}",
        "products/{}",
        "products/{}/media/{}", "tests/things/{}", "integration/admin/token", "", "{}",
    ]
)  # fmt: skip
_SCHEMAS = st.sampled_from(
    ["schema", "async/schema", "async/bulk/schema", "openapi.json", "schema/{}"]
)


@st.composite
def paths(draw: st.DrawFn) -> str:
    """Request paths: Magento's REST shapes (`/rest[/<store>][/async[/bulk]]/V1/...`), with
    odd store codes, parameters, slashes and encodings, and a few outside /rest."""
    outside = draw(st.sampled_from([None] * 12 + ["/health", "/swagger", "/", "/rest", "/x"]))
    if outside is not None:
        return outside + draw(st.sampled_from(["", "/", "/..", "/%2e%2e/rest/V1/bulk"]))
    prefix = "/rest"
    if draw(st.booleans()):
        prefix += "/" + draw(STORE_CODES)
    schema = draw(st.integers(0, 4)) == 0
    tail = draw(_SCHEMAS) if schema else draw(_ROOTS) + "/" + draw(_ROUTES)
    while "{}" in tail:
        tail = tail.replace("{}", draw(SEGMENTS), 1)
    ending = draw(st.sampled_from(["", "", "", "/", "//", "/.", "/.."]))
    separator = draw(st.sampled_from(["/", "/", "/", "//"]))
    return prefix + separator + tail + ending


def request_target(path: str, query: str) -> str:
    """What goes on the request line: the path and query as written, with only what a
    request line cannot hold (controls, spaces, non-ASCII, `#`) percent-encoded."""
    target = path + ("?" + query if query else "")
    return "".join(
        char if 0x20 < ord(char) < 0x7F and char != "#" else quote(char, safe="") for char in target
    )


# Headers --------------------------------------------------------------------------------------

ADMIN_TOKEN = "{admin-token}"
"""Stands for a valid admin token in header values; the suite puts the real one in."""
_OAUTH = (
    'OAuth oauth_consumer_key="{}", oauth_token="{}", oauth_signature_method="HMAC-SHA256", '
    'oauth_timestamp="{}", oauth_nonce="{}", oauth_version="1.0", oauth_signature="{}"'
)
_OAUTH_PARTS = st.sampled_from(["", "x", "%", "%zz", '"', "1" * 30, "é", "a b", ADMIN_TOKEN])
AUTHORIZATIONS = st.one_of(
    st.sampled_from([None, f"Bearer {ADMIN_TOKEN}", f"bearer {ADMIN_TOKEN}", "Bearer", "Bearer "]),
    st.sampled_from(["Bearer  x", f"Bearer {ADMIN_TOKEN}x", "Bearer " + "a" * 5000]),
    st.sampled_from(["Basic YWRtaW46QWRtaW4xMjMtdGVzdA==", "Basic", "Digest x", "OAuth", "OAuth "]),
    st.sampled_from(['OAuth oauth_consumer_key="', "OAuth a=b=c,,,", 'OAuth realm="", ,']),
    st.tuples(*[_OAUTH_PARTS] * 5).map(lambda parts: _OAUTH.format(*parts)),
    st.text(max_size=40),
)  # fmt: skip
"""Authorization values: admin Bearer tokens, broken ones, other schemes, OAuth 1.0a shapes."""
_MEDIA_TYPES = ["application/json", "application/xml", "text/xml", "application/xhtml+xml"]
CONTENT_TYPES = st.one_of(
    st.sampled_from([None, *_MEDIA_TYPES, "APPLICATION/JSON", "application/json; charset=utf-8"]),
    st.sampled_from(["application/json;charset=UTF-8", "text/xml; charset=latin1", "text/plain"]),
    st.sampled_from(["application/json; charset=", "application/json; boundary=x", ""]),
    st.sampled_from(["multipart/form-data; boundary=x", "application/x-www-form-urlencoded"]),
    st.sampled_from(["application/json; charset=utf-8; x=y", "*/*", "application/", ";"]),
    st.text(max_size=30),
)
ACCEPTS = st.one_of(
    st.sampled_from([None, *_MEDIA_TYPES, "*/*", "text/html", "application/json;q=0", ""]),
    st.sampled_from(["application/xml;q=0.5, application/json", "application/*", "*/xml"]),
    st.sampled_from(["text/html, */*;q=0.1", ";;;", "application/json;q=x", "*/*;q=-1"]),
    st.text(max_size=30),
)
HOSTS = st.sampled_from([None, None, None, "evil.example", "", "a b", "[::1]:99999", "é", "x:y:z"])


@st.composite
def headers(draw: st.DrawFn) -> dict[str, str]:
    """Request headers: Authorization, Content-Type, Accept and Host, each maybe missing."""
    chosen = {
        "Authorization": draw(AUTHORIZATIONS),
        "Content-Type": draw(CONTENT_TYPES),
        "Accept": draw(ACCEPTS),
        "Host": draw(HOSTS),
    }
    return {name: value for name, value in chosen.items() if value is not None}


# Bodies ---------------------------------------------------------------------------------------

BODY_KEYS = st.sampled_from(
    [
        "customer", "email", "firstname", "lastname", "password", "redirectUrl", "website_id",
        "store_id", "group_id", "dob", "gender", "addresses", "custom_attributes",
        "extension_attributes", "product", "sku", "name", "price", "statuses",
        "operation_ids", "username", "id", "bulk_uuid", "0", "1", "", "__proto__", "item",
    ]
)  # fmt: skip
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
    st.sampled_from(["a@example.com", "bad", "Ann", "1", "2", "5", "\0", "\ud800"]),
)
JSON_VALUES = st.recursive(
    _SCALARS,
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(BODY_KEYS | st.text(max_size=6), children, max_size=5)
    ),
    max_leaves=30,
)  # fmt: skip
_CUSTOMER = st.fixed_dictionaries(
    {"customer": st.fixed_dictionaries({"email": st.emails(), "firstname": st.just("Ann")})},
    optional={"password": st.just("Secret123-x"), "customer_extra": JSON_VALUES},
)
_ITEMS = _CUSTOMER | JSON_VALUES
BULK_ITEMS = st.lists(_ITEMS, max_size=6)
"""Bulk request bodies: arrays of items, valid and not."""


def _json_text(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def _deep(opening: str, closing: str) -> st.SearchStrategy[str]:
    return st.sampled_from([100, 511, 513, 1000, 5000]).map(
        lambda depth: opening * depth + "1" + closing * depth
    )


_BROKEN_JSON = st.sampled_from(
    ['{"a":1,"a":2}', '{"customer":{"email":"a@example.com"},"customer":[]}', "[1,2", "{", "}",
     "", " ", "null", "NaN", "[Infinity]", "1e999", "-", '"\\ud800"', '"\\u0000"', "[1,]",
     '{"a" 1}', "\ufeff{}", "{}garbage", "[[[[", "0" * 500,
     '{"customer":"' + "x" * 100_000 + '"}']
)  # fmt: skip
JSON_BODIES = st.one_of(
    JSON_VALUES.map(_json_text),
    _CUSTOMER.map(_json_text),
    BULK_ITEMS.map(_json_text),
    _BROKEN_JSON,
    _deep("[", "]"),
    _deep('{"customer":', "}"),
).map(lambda text: text.encode("utf-8", "surrogatepass"))
"""JSON request bodies: wrong types, deep nesting, huge strings, duplicate keys, bulk arrays
with bad items, invalid JSON and invalid UTF-8."""

_XML_NAMES = BODY_KEYS.filter(lambda name: name.isidentifier()) | st.sampled_from(
    ["a", "item", "request", "x:y", "1bad", "a-b", "é"]
)
_XML_TEXT = st.text(max_size=12).map(
    lambda text: text.replace("&", "&amp;").replace("<", "&lt;").replace("]]>", "")
)


@st.composite
def _xml_element(draw: st.DrawFn, depth: int = 0) -> str:
    name = draw(_XML_NAMES)
    attributes = draw(st.sampled_from(["", ' a="1"', " item_id='2'", ' xsi:nil="true"']))
    if depth >= 4 or draw(st.booleans()):
        content = draw(_XML_TEXT | st.sampled_from(["<![CDATA[<x>]]>", "&#0;", "&unknown;"]))
    else:
        content = "".join(draw(st.lists(_xml_element(depth + 1), max_size=3)))
    return f"<{name}{attributes}>{content}</{name}>"


_BROKEN_XML = st.sampled_from(
    ["<a>", "</a>", "<a></b>", "", "<?xml?>", "<a>&lt</a>", "<a b='1' b='2'/>", "<!-- x -->",
     '<!DOCTYPE a [<!ENTITY e "x">]><a>&e;</a>', '<!DOCTYPE a SYSTEM "file:///etc/passwd"><a/>',
     '<!DOCTYPE a [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]><request>&b;</request>',
     "<request><item>1</item><item><x>1</x></item></request>", "<a>\udcff</a>"]
)  # fmt: skip
_XML_DECLARATIONS = st.sampled_from(
    ["", "", '<?xml version="1.0"?>', '<?xml version="1.0" encoding="ISO-8859-1"?>',
     '<?xml version="1.0" encoding="UTF-16"?>', '<?xml version="1.1"?>', "\ufeff"]
)  # fmt: skip
XML_BODIES = st.one_of(
    st.tuples(_XML_DECLARATIONS, _xml_element()).map("".join),
    _BROKEN_XML,
    _deep("<a>", "</a>"),
).map(lambda text: text.encode("utf-8", "surrogatepass"))
"""XML request bodies: element trees with attributes and odd names, entities and DOCTYPEs,
declarations of other encodings, deep nesting and malformed documents."""
BODIES = st.one_of(JSON_BODIES, XML_BODIES, st.binary(max_size=40))


class Tally:
    """Requests each fuzz suite sent and the 5xx it got, per backend, for the run's summary."""

    sent: ClassVar[Counter[tuple[str, str]]] = Counter()
    server_errors: ClassVar[Counter[tuple[str, str]]] = Counter()

    @classmethod
    def count(cls, suite: str, backend: str, status: int) -> None:
        cls.sent[suite, backend] += 1
        if status >= 500:
            cls.server_errors[suite, backend] += 1

    @classmethod
    def lines(cls) -> list[str]:
        return [
            f"fuzz {suite} on {backend}: {sent} requests, {cls.server_errors[suite, backend]} 5xx"
            for (suite, backend), sent in sorted(cls.sent.items())
        ]


def answering_server(directory: Path, database_url: str) -> RunningServer:
    """A server without a worker (accepted operations stay as they are: the suites are about
    answers), with routes that have path parameters."""
    return start_server(
        directory / "server",
        "--no-worker",
        DATABASE_URL=database_url,
        HANDLER_MODULES='["tests.handler_fixtures.products"]',
        MAINTENANCE_INTERVAL_SECONDS="86400",
        BULK_LIFETIME_DAYS="0",
        # Long polls of the change feed answer at once: thousands of requests are sent.
        CHANGE_WAIT_MAX_SECONDS="0",
    )
