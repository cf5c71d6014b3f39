"""Every error text kvgate answers, each defined once.

Redis's own texts come first, verbatim (``tests`` compare them with a real Redis); then the
texts kvgate adds for what Redis never says (refusals, limits, backend failures).  Code
anywhere in kvgate imports a text from here rather than writing it out.
"""

from __future__ import annotations

# --- Redis's own texts ------------------------------------------------------------

WRONGTYPE = "WRONGTYPE Operation against a key holding the wrong kind of value"
EXECABORT = "EXECABORT Transaction discarded because of previous errors."
WRONGPASS = "WRONGPASS invalid or missing auth token"


def wrong_arity(fullname: str) -> str:
    return f"ERR wrong number of arguments for '{fullname}' command"


def _clean(text: str) -> str:
    # Redis replaces CR/LF in error texts so they stay one protocol line.
    return text.replace("\r", " ").replace("\n", " ")


def unknown_command(name: str, args: list[str]) -> str:
    """Redis's text, including its 128-character budget for the argument preview."""
    preview = ""
    for arg in args:
        if len(preview) >= 128:
            break
        preview += f"'{arg[: 128 - len(preview)]}' "
    return _clean(f"ERR unknown command '{name[:128]}', with args beginning with: {preview}")


def unknown_subcommand(container: str, sub: str) -> str:
    return _clean(f"ERR unknown subcommand '{sub[:128]}'. Try {container.upper()} HELP.")


def subcommand_syntax(container: str, sub: str) -> str:
    """A known subcommand with arguments it does not take (PUBSUB CHANNELS a b)."""
    return _clean(
        f"ERR unknown subcommand or wrong number of arguments for '{sub[:128]}'. Try {container.upper()} HELP."
    )


def noperm(fullname: str) -> str:
    return f"NOPERM this user has no permissions to run the '{fullname}' command"


# Arguments and numbers, in any command.

SYNTAX_ERROR = "ERR syntax error"
NOT_INTEGER = "ERR value is not an integer or out of range"
NOT_FLOAT = "ERR value is not a valid float"
OUT_OF_RANGE = "ERR value is out of range"
MUST_BE_POSITIVE = "ERR value is out of range, must be positive"
OVERFLOW = "ERR increment or decrement would overflow"
DECREMENT_OVERFLOW = "ERR decrement would overflow"
NAN_OR_INF_INCREMENT = "ERR value is NaN or Infinity"
NAN_OR_INF_RESULT = "ERR increment would produce NaN or Infinity"
NUMKEYS_POSITIVE = "ERR numkeys should be greater than 0"
TOO_MANY_KEYS = "ERR Number of keys can't be greater than number of args"
COUNT_POSITIVE = "ERR count should be greater than 0"
LIMIT_NEGATIVE = "ERR LIMIT can't be negative"
INVALID_CURSOR = "ERR invalid cursor"


def out_of_range_between(low: int, high: int) -> str:
    """``getRangeLongFromObjectOrReply`` without a message of its own (Redis's grammar)."""
    return f"ERR value is out of range, value must between {low} and {high}"


# Keys and expiry.

NO_SUCH_KEY = "ERR no such key"
SAME_OBJECT = "ERR source and destination objects are the same"
EXPIRE_NX_CONFLICT = "ERR NX and XX, GT or LT options at the same time are not compatible"
EXPIRE_GT_LT_CONFLICT = "ERR GT and LT options at the same time are not compatible"


def invalid_expire_time(name: str) -> str:
    return f"ERR invalid expire time in '{name}' command"


def unsupported_option(option: str) -> str:
    return f"ERR Unsupported option {option}"


# Strings.

STRING_TOO_BIG = "ERR string exceeds maximum allowed size (proto-max-bulk-len)"
OFFSET_OUT_OF_RANGE = "ERR offset is out of range"
LCS_LEN_AND_IDX = "ERR If you want both the length and indexes, please just use IDX."
LCS_NOT_STRINGS = "ERR The specified keys must contain string values"
LCS_TOO_BIG = "ERR Insufficient memory, transient memory for LCS exceeds proto-max-bulk-len"

# HyperLogLog (a string in Redis's HLL format) and bitmaps (any string).

HLL_WRONGTYPE = "WRONGTYPE Key is not a valid HyperLogLog string value."
HLL_CORRUPT = "INVALIDOBJ Corrupted HLL object detected"
BIT_OFFSET = "ERR bit offset is not an integer or out of range"
BIT_VALUE = "ERR bit is not an integer or out of range"
BITPOS_BIT = "ERR The bit argument must be 1 or 0."
BITOP_NOT_ONE_SOURCE = "ERR BITOP NOT must be called with a single source key."
BITFIELD_TYPE = (
    "ERR Invalid bitfield type. Use something like i16 u8. Note that u64 is not supported but i64 is."
)
BITFIELD_OVERFLOW = "ERR Invalid OVERFLOW type specified"
BITFIELD_RO_GET_ONLY = "ERR BITFIELD_RO only supports the GET subcommand"


def bitop_two_sources(op: str) -> str:
    """Redis 8.2's text for DIFF, DIFF1 and ANDOR with one source (``op`` upper case)."""
    return f"ERR BITOP {op} must be called with at least two source keys."


# Hashes.

HASH_NOT_INTEGER = "ERR hash value is not an integer"
HASH_NOT_FLOAT = "ERR hash value is not a float"
#: Field expiration (Redis 7.4-8.2's t_hash.c): HEXPIRE..., HTTL..., HPERSIST, HGETDEL,
#: HGETEX, HSETEX.  Redis words the numfields check differently per command.
FIELDS_MISSING = "ERR Mandatory argument FIELDS is missing or not at the right position"
NUMFIELDS_POSITIVE = "ERR Number of fields must be a positive integer"
NUMFIELDS_GREATER_THAN_0 = "ERR Parameter `numFields` should be greater than 0"
NUMFIELDS_MISMATCH = "ERR The `numfields` parameter must match the number of arguments"
NUMFIELDS_INVALID = "ERR invalid number of fields"
FIELD_EXPIRE_NEGATIVE = "ERR invalid expire time, must be >= 0"
FIELD_EXPIRE_MISSING = "ERR missing expire time"
HSETEX_FNX_FXX = "ERR Only one of FXX or FNX arguments can be specified"
HSETEX_EXPIRATIONS = "ERR Only one of EX, PX, EXAT, PXAT or KEEPTTL arguments can be specified"


def unknown_argument(arg: str) -> str:
    return f"ERR unknown argument: {arg}"


# Lists.

INDEX_OUT_OF_RANGE = "ERR index out of range"
LPOS_RANK_ZERO = (
    "ERR RANK can't be zero: use 1 to start from the first match, 2 from the second ... "
    "or use negative to start from the end of the list"
)
LPOS_COUNT_NEGATIVE = "ERR COUNT can't be negative"
LPOS_MAXLEN_NEGATIVE = "ERR MAXLEN can't be negative"

# Sorted sets.

ZADD_XX_NX = "ERR XX and NX options at the same time are not compatible"
ZADD_GT_LT_NX = "ERR GT, LT, and/or NX options at the same time are not compatible"
ZADD_INCR_PAIRS = "ERR INCR option supports a single increment-element pair"
SCORE_NAN = "ERR resulting score is not a number (NaN)"
ZRANGE_LIMIT_NEEDS_BY = (
    "ERR syntax error, LIMIT is only supported in combination with either BYSCORE or BYLEX"
)
ZRANGE_WITHSCORES_BYLEX = "ERR syntax error, WITHSCORES not supported in combination with BYLEX"
WEIGHT_NOT_FLOAT = "ERR weight value is not a float"
MIN_MAX_NOT_FLOAT = "ERR min or max is not a float"
MIN_MAX_NOT_LEX = "ERR min or max not valid string range item"


def no_input_keys(name: str) -> str:
    return f"ERR at least 1 input key is needed for '{name}' command"


# Geo (geo.c).

GEO_UNIT = "ERR unsupported unit provided. please use M, KM, FT, MI"
GEO_RADIUS_NOT_FLOAT = "ERR need numeric radius"
GEO_WIDTH_NOT_FLOAT = "ERR need numeric width"
GEO_HEIGHT_NOT_FLOAT = "ERR need numeric height"
GEO_NEGATIVE_RADIUS = "ERR radius cannot be negative"
GEO_NEGATIVE_BOX = "ERR height or width cannot be negative"
GEO_MEMBER_NOT_FOUND = "ERR could not decode requested zset member"
GEO_COUNT_POSITIVE = "ERR COUNT must be > 0"
GEO_ANY_NEEDS_COUNT = "ERR the ANY argument requires COUNT argument"


def geo_invalid_pair(longitude: float, latitude: float) -> str:
    """C's ``%f`` of each coordinate (Python's is the same)."""
    return f"ERR invalid longitude,latitude pair {longitude:f},{latitude:f}"


def geo_store_with_options(searchstore: bool) -> str:
    what = "GEOSEARCHSTORE" if searchstore else "STORE option in GEORADIUS"
    return f"ERR {what} is not compatible with WITHDIST, WITHHASH and WITHCOORD options"


def geo_needs_center(name: str) -> str:
    """``name`` as the caller wrote it (Redis prints ``argv[0]``)."""
    return f"ERR exactly one of FROMMEMBER or FROMLONLAT can be specified for {name}"


def geo_needs_shape(name: str) -> str:
    return f"ERR exactly one of BYRADIUS and BYBOX can be specified for {name}"


# Scripts (EVAL, EVALSHA, SCRIPT ...), their shebang, and redis.call inside them.

NOSCRIPT = "NOSCRIPT No matching script. Please use EVAL."
NOTBUSY = "NOTBUSY No scripts in execution right now."
RO_WITH_WRITE_FLAG = "ERR Can not execute a script with write flag using *_ro command."
NEGATIVE_KEYS = "ERR Number of keys can't be negative"
SCRIPT_FLUSH_MODE = "ERR SCRIPT FLUSH only support SYNC|ASYNC option"
SHEBANG_INVALID = "ERR Invalid script shebang"
SHEBANG_INVALID_ENGINE = "ERR Invalid engine in script shebang"
#: redis.call / redis.pcall (the Lua side raises the first two as well).
#: Lua's own message when an allocation fails (lua_error with LUA_ERRMEM).
LUA_OUT_OF_MEMORY = "not enough memory"
LUA_NO_ARGS = "Please specify at least one argument for this redis lib call"
LUA_BAD_ARG = "Lua redis lib command arguments must be strings or integers"
LUA_OUTSIDE_SCRIPT = "ERR redis.call/pcall can only be called inside a script invocation"
LUA_UNKNOWN_COMMAND = "Unknown Redis command called from script"
LUA_WRONG_ARITY = "Wrong number of args calling Redis command from script"
LUA_NOT_ALLOWED = "This Redis command is not allowed from script"
LUA_WRITE_FROM_READ_ONLY = "Write commands are not allowed from read-only scripts."


def shebang_unexpected_engine(engine: str) -> str:
    return f"ERR Unexpected engine in script shebang: {engine}"


def shebang_unknown_option(option: str) -> str:
    return f"ERR Unknown lua shebang option: {option}"


def shebang_unexpected_flag(flag: str) -> str:
    return f"ERR Unexpected flag in script shebang: {flag}"


def script_compile_error(detail: str) -> str:
    return _clean(f"ERR Error compiling script (new function): {detail}")


def script_run_error(sha: str, detail: str) -> str:
    """A script failed without an error table to answer (Lua itself failed outside the
    script's error handler, or ``error({})``): Redis keeps 100 characters of the message."""
    return _clean(f"ERR Error running script {sha}, {detail[:100]} ")


def script_error_at(text: str, sha: str, source: str, line: str) -> str:
    """A script's error with the place it was raised (``... script: <sha>, on @user_script:1.``)."""
    return _clean(f"{text} script: {sha}, on {source}:{line}.")


# Streams (t_stream.c of Redis 7.0; XDELEX, XACKDEL and the KEEPREF... options of 8.2)
STREAM_ID_INVALID = "ERR Invalid stream ID specified as stream command argument"
XADD_ID_ZERO = "ERR The ID specified in XADD must be greater than 0-0"
XADD_ID_EXHAUSTED = "ERR The stream has exhausted the last possible ID, unable to add more items"
XADD_ID_TOO_SMALL = "ERR The ID specified in XADD is equal or smaller than the target stream top item"
XADD_TOO_LARGE = "ERR Elements are too large to be stored"
TRIM_BOTH_STRATEGIES = "ERR syntax error, MAXLEN and MINID options at the same time are not compatible"
MAXLEN_NEGATIVE = "ERR The MAXLEN argument must be >= 0."
TRIM_LIMIT_NEGATIVE = "ERR The LIMIT argument must be >= 0."
LIMIT_WITHOUT_STRATEGY = "ERR syntax error, LIMIT cannot be used without specifying a trimming strategy"
XTRIM_WITHOUT_STRATEGY = "ERR syntax error, XTRIM must be called with a trimming strategy"
LIMIT_WITHOUT_APPROX = "ERR syntax error, LIMIT cannot be used without the special ~ option"
INTERVAL_START_INVALID = "ERR invalid start ID for the interval"
INTERVAL_END_INVALID = "ERR invalid end ID for the interval"
XREAD_UNBALANCED = "ERR Unbalanced XREAD list of streams: for each stream key an ID or '$' must be specified."
XREAD_GROUP_OPTION = "ERR The GROUP option is only supported by XREADGROUP. You called XREAD instead."
XREAD_NOACK_OPTION = "ERR The NOACK option is only supported by XREADGROUP. You called XREAD instead."
XREADGROUP_NO_GROUP_OPTION = "ERR Missing GROUP option for XREADGROUP"
XREADGROUP_DOLLAR = (
    "ERR The $ ID is meaningless in the context of XREADGROUP: you want to read the history "
    "of this consumer by specifying a proper ID, or use the > ID to get new messages. The $ ID "
    "would just return an empty result set."
)
XREAD_GREATER_ID = (
    "ERR The > ID can be specified only when calling XREADGROUP using the GROUP <group> <consumer> option."
)
ENTRIESREAD_INVALID = "ERR value for ENTRIESREAD must be positive or -1"
XGROUP_NEEDS_KEY = (
    "ERR The XGROUP subcommand requires the key to exist. Note that for CREATE you may want "
    "to use the MKSTREAM option to create an empty stream automatically."
)
BUSYGROUP = "BUSYGROUP Consumer Group name already exists"
ENTRIES_ADDED_NEGATIVE = "ERR entries_added must be positive"
XSETID_BELOW_MAX_DELETED = "ERR The ID specified in XSETID is smaller than the provided max_deleted_entry_id"
XSETID_BELOW_TOP = "ERR The ID specified in XSETID is smaller than the target stream top item"
XSETID_ENTRIES_ADDED_SMALL = (
    "ERR The entries_added specified in XSETID is smaller than the target stream length"
)
STREAM_IDS_NUMIDS = "ERR Number of IDs must be a positive integer"
STREAM_IDS_MISMATCH = "ERR The `numids` parameter must match the number of arguments"


def block_in_script(command: str) -> str:
    """XREAD/XREADGROUP with BLOCK: the gateway refuses the option, so only a script's
    ``redis.call`` brings it to the engine, and this is what Redis answers there."""
    return _clean(f"ERR {command} command is not allowed with BLOCK option from scripts")


def min_idle_invalid(command: str) -> str:
    return f"ERR Invalid min-idle-time argument for {command}"


def xclaim_option_invalid(option: str) -> str:
    """XCLAIM's IDLE, TIME or RETRYCOUNT with a value that is no integer."""
    return f"ERR Invalid {option} option argument for XCLAIM"


def xclaim_option_unknown(option: str) -> str:
    return _clean(f"ERR Unrecognized XCLAIM option '{option}'")


def nogroup(key: str, group: str) -> str:
    return _clean(f"NOGROUP No such key '{key}' or consumer group '{group}'")


def nogroup_xreadgroup(key: str, group: str) -> str:
    return _clean(f"NOGROUP No such key '{key}' or consumer group '{group}' in XREADGROUP with GROUP option")


def nogroup_for_key(group: str, key: str) -> str:
    return _clean(f"NOGROUP No such consumer group '{group}' for key name '{key}'")


# --- kvgate's own texts -----------------------------------------------------------


def err(text: str) -> str:
    """``text`` as a generic error reply: Redis's ``ERR`` code before it."""
    return f"ERR {text}"


def not_supported(name: str, backend: str) -> str:
    """A command the backend's engine does not implement (it exists in Redis)."""
    return f"ERR command '{name}' is not supported by the {backend} backend"


NOT_IN_TRANSACTION = "not allowed inside a transaction"


# Why a Redis that also holds another database of this kvgate refuses a command (README,
# "Databases that share one Redis"); the start-up log says more.
SCRIPTS_NOT_CONFINED = (
    "this database shares its Redis server with another database, and kvgate cannot "
    "confine scripts to it (kvgate's start-up log says why)"
)
FUNCTIONS_SERVER_WIDE = (
    "function libraries are server-wide, and this database shares its Redis server with another database"
)


def not_available(fullname: str, reason: str) -> str:
    """A command kvgate's policy refuses over REST."""
    return f"ERR command '{fullname}' is not available over REST: {reason}"


def reply_too_large(limit: int) -> str:
    """A reply whose size the caller picks (HRANDFIELD k -1000000000) is capped."""
    return f"ERR count is too large: kvgate answers at most {limit} elements per reply"


# --- kvgate's own texts: request bodies -------------------------------------------

BODY_EMPTY = "ERR invalid request body: empty body, expected a JSON array"
BODY_TOO_DEEP = "ERR invalid request body: JSON nested too deeply"
COMMAND_NOT_ARRAY = 'ERR invalid request body: a command is a non-empty JSON array, e.g. ["SET","k","v"]'
COMMANDS_NOT_ARRAY = 'ERR invalid request body: expected a non-empty array of commands, e.g. [["GET","k"]]'
NO_COMMAND = 'ERR no command: POST a JSON array such as ["PING"], or use the path form /ping'


def body_not_json(detail: str) -> str:
    return f"ERR invalid request body: not valid JSON ({detail})"


def bad_argument(position: int, kind: str) -> str:
    return (
        f"ERR invalid request body: argument {position} is {kind}; "
        "arguments must be strings, numbers, booleans, objects or arrays"
    )


# --- kvgate's own texts: the path to the backend ------------------------------------

BACKEND_CLOSED = "ERR backend unavailable (closed)"
TOO_MANY_SUBSCRIPTIONS = "ERR too many open subscriptions on this kvgate process; retry later"
#: Redis closes a subscriber past its output buffer limit (client-output-buffer-limit pubsub).
SUBSCRIBER_TOO_SLOW = "ERR the subscriber fell too far behind its messages and was disconnected"


def backend_unavailable(detail: str) -> str:
    return f"ERR backend unavailable ({detail}); retry later"


def subscribe_needs_names(kind: str) -> str:
    return f"ERR {kind} needs at least one name: /{kind}/<name>"


BACKEND_CONNECTION_LOST = "ERR backend connection lost; the command may or may not have been applied"
BACKEND_OVERLOADED = "ERR backend overloaded: too many commands in flight; retry later"


def backend_timeout(seconds: float) -> str:
    return f"ERR backend did not answer within {seconds:g}s; the command may or may not have been applied"


# --- Redis Cluster (kvgate.adapters.redis_cluster) -----------------------------------

#: Redis Cluster's own text: a command's (or a transaction's) keys in several hash slots.
CROSSSLOT = "CROSSSLOT Keys in request don't hash to the same slot"

#: The starts of Redis Cluster's redirections, which kvgate reads and follows:
#: ``MOVED <slot> <host:port>`` (the slot lives elsewhere now) and ``ASK <slot> <host:port>``
#: (this request only, during a migration); TRYAGAIN and CLUSTERDOWN are retried or a 503.
MOVED = "MOVED "
ASK = "ASK "


def cluster_not_in_transaction(fullname: str) -> str:
    """A command kvgate fans out over every primary (DBSIZE, KEYS...) inside /multi-exec."""
    return (
        f"ERR command '{fullname}' runs on every node of a Redis Cluster and cannot be part "
        "of a transaction, which runs on one node"
    )


# --- kvgate's own texts: scripts ---------------------------------------------------

#: What the count hook raises inside Lua to stop a script (the client sees why instead).
SCRIPT_ABORTED = "ERR script aborted"


def script_timed_out(limit_ms: int) -> str:
    return f"ERR script timed out after {limit_ms} ms and was aborted (kvgate's script time limit)"


def script_out_of_memory(limit: int) -> str:
    size = f"{limit // (1024 * 1024)} MiB" if limit % (1024 * 1024) == 0 else f"{limit} bytes"
    return f"ERR script ran out of memory and was aborted (kvgate's script memory limit is {size})"


# --- kvgate's own texts: HTTP requests ----------------------------------------------

NO_DATABASE = "ERR no database at this path"
MONITOR_REFUSED = (
    "ERR monitor is not available: it would show every client's commands "
    "on the backend, other databases' included"
)
INTERNAL_ERROR = "ERR internal error in kvgate (logged on the server)"
UNKNOWN_OPS_ENDPOINT = "ERR unknown endpoint; try /_kvgate/health or /_kvgate/metrics"


def body_too_large(limit: int) -> str:
    return f"ERR max request size exceeded (limit {limit} bytes)"


# Connection-level answers (kvgate/connections.py): slow, stalled or malformed clients.
BODY_FRAMING = "ERR invalid request body: its chunked encoding or length is broken"


def headers_timeout(seconds: float) -> str:
    return f"ERR request headers not received within {seconds:g}s (header_timeout); connection closed"


def body_timeout(seconds: float) -> str:
    return f"ERR request body not received within {seconds:g}s (body_timeout); connection closed"


def too_many_connections(limit: int) -> str:
    return f"ERR too many connections to this kvgate process (max_connections {limit}); retry shortly"


def malformed_request(reason: str) -> str:
    return f"ERR malformed HTTP request ({reason}); connection closed"


def method_not_allowed(method: str, here: bool = True) -> str:
    return f"ERR method {method} is not allowed here" if here else f"ERR method {method} is not allowed"


def too_many_commands(count: int, limit: int) -> str:
    return f"ERR too many commands in one request: {count} (limit {limit}); split the batch"


def reply_past_limit(limit: int) -> str:
    """A reply left out: the request's replies would pass ``max_reply_bytes``."""
    return (
        f"ERR reply too large: this request's replies would pass max_reply_bytes ({limit} bytes); "
        "the command ran but its reply is not sent: read big values in parts (GETRANGE, LRANGE, HSCAN...)"
    )


# --- kvgate's own texts: fakeredis ---------------------------------------------------


def fakeredis_failed(error: str) -> str:
    return f"ERR fakeredis failed on this request ({error}); its connection was reset"


# --- kvgate's own texts: the SQLite backend ------------------------------------------

SQLITE_WRITER_BUSY = "ERR too many commands waiting for the sqlite writer; retry later"


def sqlite_read_failed(detail: object) -> str:
    return f"ERR sqlite read failed: {detail}"


def sqlite_writer_stopped(detail: str) -> str:
    return f"ERR the sqlite writer has stopped ({detail})"


def sqlite_writer_timeout(seconds: float) -> str:
    return f"ERR the sqlite writer did not answer within {seconds:g}s; the command may still be applied"


SQLITE_READERS_BUSY = "ERR too many commands waiting for the sqlite readers; retry later"


def sqlite_readers_timeout(seconds: float) -> str:
    return f"ERR the sqlite readers did not answer within {seconds:g}s; nothing was changed"


def sqlite_write_failed(detail: object, applied: bool = False) -> str:
    if applied:
        return f"ERR sqlite write failed: {detail}"
    return f"ERR sqlite write failed ({detail}); the writes were not applied"


def sqlite_busy(detail: object) -> str:
    return f"ERR sqlite is busy or unavailable ({detail}); retry later"


def sqlite_commit_failed(detail: object) -> str:
    return f"ERR sqlite commit failed ({detail}); the writes were not applied"


# --- kvgate's own texts: the DynamoDB backend ----------------------------------------

DYNAMODB_BUSY = "ERR too many commands waiting for dynamodb; retry later"
DYNAMODB_CONFLICTS = "ERR too many concurrent writers on these keys; the command was not applied, retry later"
DYNAMODB_THROTTLING = "ERR dynamodb is throttling requests; retry later"
DYNAMODB_NO_CREDENTIALS = "ERR dynamodb: no AWS credentials found"


def dynamodb_timeout(seconds: float) -> str:
    return f"ERR dynamodb did not answer within {seconds:g}s; the command may or may not have been applied"


def not_run_after_failure(detail: str) -> str:
    return f"ERR not run: an earlier command failed ({detail})"


def dynamodb_too_many_needs(limit: int) -> str:
    return f"ERR the command reads more than {limit} keys it did not declare; the dynamodb backend refuses it"


def dynamodb_key_too_long(size: int, limit: int) -> str:
    return (
        f"ERR key is too long for the dynamodb backend: {size} bytes, at most {limit} (DynamoDB's key limit)"
    )


def dynamodb_value_too_large(key: str, size: int, limit: int) -> str:
    return (
        f"ERR value is too large for the dynamodb backend: key {key} would need {size} bytes; "
        f"a key with all its elements must fit in one DynamoDB item ({limit} bytes)"
    )


def dynamodb_element_too_large(key: str, size: int, limit: int) -> str:
    return (
        f"ERR value is too large for the dynamodb backend: an element of key {key} would need "
        f"{size} bytes; one element must fit in one DynamoDB item ({limit} bytes)"
    )


def dynamodb_too_many_keys(limit: int, writes: int, checks: int) -> str:
    return (
        f"ERR the dynamodb backend changes at most {limit} keys atomically; "
        f"this would change {writes} and depend on {checks} more"
    )


def dynamodb_too_many_bytes(limit: int, size: int) -> str:
    return f"ERR the dynamodb backend writes at most {limit} bytes atomically; this needs {size}"


def dynamodb_refused(what: str, detail: str) -> str:
    return f"ERR dynamodb refused the {what}: {detail}"


def dynamodb_failed(code: str, detail: str, applied: str) -> str:
    return f"ERR dynamodb request failed ({code}: {detail}); {applied}"


def dynamodb_unreachable(detail: object, applied: str) -> str:
    return f"ERR dynamodb is unreachable ({detail}); {applied}"


def dynamodb_cancelled(reasons: str) -> str:
    return f"ERR dynamodb cancelled the transaction ({reasons}); nothing was changed"


# --- kvgate's own texts: browsers, response formats, the console (issue 12) --------------

RESP2_WITH_BASE64 = (
    "ERR Upstash-Response-Format: resp2 cannot be combined with Upstash-Encoding: base64 "
    "(RESP2 carries the raw bytes already)"
)


def response_format_unknown(value: str) -> str:
    return f"ERR unknown Upstash-Response-Format {value[:64]!r}: expected json or resp2"


def cors_origin_refused(origin: str) -> str:
    return f"ERR origin {origin[:200]!r} may not call this database from a browser (its cors_origins setting)"


CONSOLE_OFF = "ERR the web console is turned off (the console setting)"
CONSOLE_NO_FILE = "ERR no such console file"


# --- RedisJSON 2.8's texts, verbatim (documents, issue 10) -----------------------------
# Some have no "ERR" code and one says "Err": RedisJSON answers them so.

JSON_WRONG_KEY_TYPE = "Existing key has wrong Redis type"
JSON_NO_SUCH_KEY = "ERR could not perform this operation on a key that doesn't exist"
JSON_NEW_AT_ROOT = "ERR new objects must be created at the root"
JSON_PATH_GONE = "ERR Path does not exist"
JSON_NOT_STATIC = "Err wrong static path"
JSON_INDEX_OUT_OF_RANGE = "ERR array index out of range"
JSON_INDEX_OUT_OF_BOUNDS = "ERR index out of bounds"
JSON_NOT_A_NUMBER_RESULT = "ERR result is not a number"
JSON_BAD_NUMBER = "bad input number"
JSON_NOT_INTEGER = "Couldn't parse as integer"
JSON_WRONG_FORMAT = "ERR wrong format"
JSON_WRONG_REPLY_FORMAT = "ERR wrong reply format"
JSON_FORMAT_RESP2 = "ERR FORMAT argument is not supported on RESP2"
JSON_DEBUG_UNKNOWN = "ERR unknown subcommand - try `JSON.DEBUG HELP`"
JSON_BSON_UNSUPPORTED = "ERR FORMAT BSON is not supported by kvgate's documents"


def json_path_missing(path: str) -> str:
    return f"ERR Path '{path}' does not exist"


def json_path_missing_or(path: str, why: str) -> str:
    return f"ERR Path '{path}' does not exist or {why}"


def json_expected(expected: str, found: str) -> str:
    return f"WRONGTYPE wrong type of path value - expected {expected} but found {found}"


#: Why JSON.* is refused on a Redis server without a JSON module (README, "Documents").
JSON_UNAVAILABLE = (
    "this Redis server has no JSON module; documents (JSON.*) are served by kvgate's sqlite, "
    "dynamodb and fakeredis backends, and by a Redis with RedisJSON (Redis Stack, Redis 8) or "
    "Valkey with valkey-json"
)
