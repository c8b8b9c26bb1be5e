//! `RedisBroker`: the [`Broker`] contract on Redis Streams (feature
//! `redis`, on by default).
//!
//! Every key of queue `Q` starts with the hash tag `{Q}` (one Redis
//! Cluster slot), and every step that reads and writes is one Lua script
//! (atomic on the server). This crate's README.md lists the keys and what
//! each script guarantees.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use redis::{Client, Connection, ErrorKind, RedisError, Script, Value};
use spindle::manager::BrokerCounts;

use crate::broker::{Broker, BrokerError, Fetched, Heartbeat, Outgoing, PutEntry, PutOptions};
use crate::tls::RedisTls;

/// The consumer group every worker of a queue reads in.
const GROUP: &str = "workers";
/// How long a connection is given to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// A blocking read (XREADGROUP BLOCK, BLPOP) waits at most this long per
/// round trip: well under the connections' read timeout.
const BLOCK_STEP: Duration = Duration::from_secs(1);
/// The connections' read and write timeout.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// `join` reads the unfinished counter at least this often.
const JOIN_REREAD: Duration = Duration::from_millis(250);
/// Idle connections kept for reuse.
const POOL: usize = 8;
/// A round of a consumer's fetch runs the mover and the reclaimer (a
/// script) when this long has passed since it last did (or a delayed
/// entry it knows of is due); otherwise it reads new entries with a plain
/// `XREADGROUP`. A read that finds nothing blocks up to [`BLOCK_STEP`].
const SWEEP_EVERY: Duration = Duration::from_millis(100);
/// At most this many fetched entries' `put` flags are kept for their acks
/// (past it the map is emptied: the acks then read the flag themselves).
const PUT_FLAGS: usize = 65_536;
/// Bits of a stream id's sequence number in the trait's `u64` id.
const SEQ_BITS: u32 = 22;
/// Bits of a stream id's milliseconds (2^42 ms: until the year 2109).
const MS_BITS: u32 = 64 - SEQ_BITS;

/// The trait's id of stream id `ms-seq`: `ms << 22 | seq`, or `None` if
/// either part is too large (never for an id Redis made with `*` before
/// the year 2109 and 4 million entries in one millisecond).
fn id_of(sid: &str) -> Option<u64> {
    let (ms, seq) = sid.split_once('-')?;
    let (ms, seq): (u64, u64) = (ms.parse().ok()?, seq.parse().ok()?);
    (ms >> MS_BITS == 0 && seq >> SEQ_BITS == 0).then_some((ms << SEQ_BITS) | seq)
}

/// The stream id of the trait's id `id`.
fn sid_of(id: u64) -> String {
    format!("{}-{}", id >> SEQ_BITS, id & ((1 << SEQ_BITS) - 1))
}

/// How many of a consumer's pending entries [`ACK_MANY`] lists for a
/// batch of `acks`: the batch's own and room for as many again that the
/// consumer holds between them (prefetched, still running); past that it
/// checks the rest one by one.
fn ack_listing_limit(acks: usize) -> usize {
    acks.saturating_mul(2).saturating_add(64)
}

/// Milliseconds, at least 1 and at most 2^40 (about 34 years), so that a
/// `PEXPIRE` never overflows the server's clock (an error in the middle of
/// a script would leave its earlier writes done).
fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis())
        .unwrap_or(u64::MAX)
        .clamp(1, MAX_MILLIS)
}

const MAX_MILLIS: u64 = 1 << 40;

/// One stream entry of an `XREAD`/`XREADGROUP` reply: its id, and its
/// fields and values in turn, as the server sent them.
type StreamEntry = (String, Vec<Value>);

/// The entries of an `XREAD`/`XREADGROUP` reply (a RESP2 array or a RESP3
/// map of streams; nil when nothing came), moved out of it: no copies,
/// and no map of owned field names per entry (what redis-rs's
/// `StreamReadReply` builds).
fn stream_entries(reply: Value) -> Result<Vec<StreamEntry>, RedisError> {
    let unexpected = |what: &str| {
        RedisError::from((
            ErrorKind::UnexpectedReturnType,
            "not a stream reply",
            what.to_owned(),
        ))
    };
    let streams: Vec<Value> = match reply {
        Value::Nil => return Ok(Vec::new()),
        Value::Array(streams) => streams
            .into_iter()
            .map(|s| match s {
                Value::Array(mut key_entries) if key_entries.len() == 2 => {
                    key_entries.pop().ok_or_else(|| unexpected("a stream"))
                }
                _ => Err(unexpected("a stream")),
            })
            .collect::<Result<_, _>>()?,
        Value::Map(streams) => streams.into_iter().map(|(_, v)| v).collect(),
        _ => return Err(unexpected("the reply")),
    };
    let mut out = Vec::new();
    for entries in streams {
        let Value::Array(entries) = entries else {
            return Err(unexpected("a stream's entries"));
        };
        out.reserve(entries.len());
        for e in entries {
            let Value::Array(mut parts) = e else {
                return Err(unexpected("an entry"));
            };
            let fields = match parts.pop() {
                Some(Value::Array(f)) => f,
                Some(Value::Map(m)) => m.into_iter().flat_map(|(k, v)| [k, v]).collect(),
                // A pending entry deleted since: no fields.
                Some(Value::Nil) => Vec::new(),
                _ => return Err(unexpected("an entry's fields")),
            };
            let id = match parts.pop() {
                Some(Value::BulkString(b)) => String::from_utf8(b).ok(),
                Some(Value::SimpleString(s)) => Some(s),
                _ => None,
            };
            match (id, parts.is_empty()) {
                (Some(id), true) => out.push((id, fields)),
                _ => return Err(unexpected("an entry's id")),
            }
        }
    }
    Ok(out)
}

/// Takes the value of field `name` out of an entry's `fields`.
fn take_field(fields: &mut [Value], name: &[u8]) -> Option<Value> {
    fields
        .chunks_exact_mut(2)
        .find(|kv| matches!(&kv[0], Value::BulkString(k) if k == name))
        .map(|kv| std::mem::replace(&mut kv[1], Value::Nil))
}

/// Lua shared by the scripts: `fields(stream, sid)` is the entry's fields
/// (a table) or nil; `uncount(f, key)` takes a `put` entry off the
/// unfinished counter (entries added by hand were never on it) and, when
/// that leaves none, publishes on the counter's own name (`join`).
const LUA_COMMON: &str = r"
local function fields(stream, sid)
  local e = redis.call('XRANGE', stream, sid, sid)
  if #e == 0 then return nil end
  local f = {}
  local kv = e[1][2]
  for i = 1, #kv, 2 do f[kv[i]] = kv[i + 1] end
  return f
end
local function uncount(f, key)
  if f and f['put'] and redis.call('DECR', key) <= 0 then
    redis.call('PUBLISH', key, '0')
  end
end
local function prior(f)
  if f == nil then return 0 end
  return tonumber(f['attempts'] or '0') or 0
end
local function holder(stream, group, sid)
  local p = redis.call('XPENDING', stream, group, sid, sid, 1)
  if #p == 0 then return nil, 0 end
  return p[1][2], tonumber(p[1][4])
end
";

/// KEYS: dead. Empties the dead stream: how many it held.
static PURGE_DEAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = redis.call('XLEN', KEYS[1])
redis.call('XTRIM', KEYS[1], 'MAXLEN', 0)
return n
",
    )
});

/// KEYS: dead, stream, unfinished. ARGV: the `max_deliveries` for a dead
/// letter that does not say (one dead-lettered before it was kept). Every
/// dead letter goes back on the stream as a new entry (`put`, so it counts
/// in `unfinished` again; deliveries from 0; no client to tell), and off
/// the dead stream: how many.
static RETRY_DEAD: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = 0
for _, e in ipairs(redis.call('XRANGE', KEYS[1], '-', '+')) do
  local f = {}
  local kv = e[2]
  for i = 1, #kv, 2 do f[kv[i]] = kv[i + 1] end
  local max = f['max_deliveries']
  if max == nil or max == '' then max = ARGV[1] end
  redis.call('INCR', KEYS[3])
  redis.call('XADD', KEYS[2], '*', 'entry', f['entry'] or '', 'max_deliveries', max,
    'client', '', 'on_dead', '', 'ttl_ms', '0', 'put', '1')
  redis.call('XDEL', KEYS[1], e[1])
  n = n + 1
end
return n
",
    )
});

/// KEYS: stream, unfinished, min_lease. ARGV: entry, max_deliveries,
/// client, on_dead, ttl_ms, lease_ms ('' for none). The new entry's
/// stream id. An entry with its own lease lowers `min_lease` to it (the
/// reclaimer's scan threshold; never raised again).
static PUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
redis.call('INCR', KEYS[2])
if ARGV[6] ~= '' then
  local min = tonumber(redis.call('GET', KEYS[3]) or '')
  if min == nil or tonumber(ARGV[6]) < min then redis.call('SET', KEYS[3], ARGV[6]) end
  return redis.call('XADD', KEYS[1], '*', 'entry', ARGV[1], 'max_deliveries', ARGV[2],
    'client', ARGV[3], 'on_dead', ARGV[4], 'ttl_ms', ARGV[5], 'put', '1', 'lease_ms', ARGV[6])
end
return redis.call('XADD', KEYS[1], '*', 'entry', ARGV[1], 'max_deliveries', ARGV[2],
  'client', ARGV[3], 'on_dead', ARGV[4], 'ttl_ms', ARGV[5], 'put', '1')
",
    )
});

/// KEYS: stream, unfinished, min_lease. ARGV: six per entry, as
/// [`PUT`]'s: entry, max_deliveries, client, on_dead, ttl_ms, lease_ms
/// ('' for none). Puts every entry, in order, as `PUT` does each (one
/// `INCRBY` and at most one `SET` of `min_lease` for all): their stream
/// ids.
static PUT_MANY: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local n = math.floor(#ARGV / 6)
if n == 0 then return {} end
redis.call('INCRBY', KEYS[2], n)
local min = tonumber(redis.call('GET', KEYS[3]) or '')
local low = min
local lowest = nil
local out = {}
for i = 0, n - 1 do
  local a = i * 6
  local lease = ARGV[a + 6]
  if lease ~= '' then
    local l = tonumber(lease)
    if low == nil or l < low then
      low = l
      lowest = lease
    end
    out[i + 1] = redis.call('XADD', KEYS[1], '*', 'entry', ARGV[a + 1], 'max_deliveries',
      ARGV[a + 2], 'client', ARGV[a + 3], 'on_dead', ARGV[a + 4], 'ttl_ms', ARGV[a + 5],
      'put', '1', 'lease_ms', lease)
  else
    out[i + 1] = redis.call('XADD', KEYS[1], '*', 'entry', ARGV[a + 1], 'max_deliveries',
      ARGV[a + 2], 'client', ARGV[a + 3], 'on_dead', ARGV[a + 4], 'ttl_ms', ARGV[a + 5],
      'put', '1')
  end
end
if lowest ~= nil then redis.call('SET', KEYS[3], lowest) end
return out
",
    )
});

/// KEYS: stream, dead, unfinished, expired, delayed, delayed_entries,
/// min_lease. ARGV: group, consumer, lease_ms, n, results key prefix,
/// read new ('1'/'0').
///
/// First the mover: nacked entries whose delay is over (`delayed`'s score,
/// the server's clock in ms) go back to the stream's tail, with their
/// fields as they were (`attempts`: the deliveries before; no `INCR`, they
/// were never taken off `unfinished`). Then the reclaimer: entries idle
/// past their lease (the entry's `lease_ms`, else `lease_ms` of this
/// fetch; at most 1,000 pending entries idle past the shortest of these
/// are looked at) are given up (dead stream, on_dead to the client) past
/// max_deliveries, else claimed by `consumer`. Then, with ARGV[6] `1`,
/// new entries (`XREADGROUP ... COUNT` what is left of n, never blocking
/// in a script), so that a fetch with work waiting is one round trip.
/// `{got, wait}`: the claimed and read ones as `{sid, entry, attempt,
/// put}` (`put` 1 if the entry is counted in `unfinished`, else 0), and
/// the ms until the next delayed entry is due (-1: none).
static RECLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LUA_COMMON}{}",
        r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local due = redis.call('ZRANGEBYSCORE', KEYS[5], '-inf', now, 'LIMIT', 0, 1000)
for _, sid in ipairs(due) do
  local packed = redis.call('HGET', KEYS[6], sid)
  if packed then
    redis.call('XADD', KEYS[1], '*', unpack(cmsgpack.unpack(packed)))
  end
  redis.call('ZREM', KEYS[5], sid)
  redis.call('HDEL', KEYS[6], sid)
end
local wait = -1
local nxt = redis.call('ZRANGE', KEYS[5], 0, 0, 'WITHSCORES')
if #nxt > 0 then wait = math.max(0, tonumber(nxt[2]) - now) end
local lease = tonumber(ARGV[3])
local scan = lease
local min = tonumber(redis.call('GET', KEYS[7]) or '')
local limit = tonumber(ARGV[4])
if min ~= nil and min < lease then
  scan = min
  limit = 1000
end
local pend = redis.call('XPENDING', KEYS[1], ARGV[1], 'IDLE', scan, '-', '+', limit)
local out = {}
local claimed = 0
for _, p in ipairs(pend) do
  local sid = p[1]
  local count = tonumber(p[4])
  local f = fields(KEYS[1], sid)
  if f == nil then
    redis.call('XACK', KEYS[1], ARGV[1], sid)
  elseif tonumber(p[3]) < (tonumber(f['lease_ms'] or '') or lease)
      or claimed >= tonumber(ARGV[4]) then
    -- Its own lease has not run out yet (or enough claimed): not now.
  else
    local max = tonumber(f['max_deliveries'] or '1') or 1
    count = count + prior(f)
    redis.call('INCR', KEYS[4])
    if count >= max then
      redis.call('XADD', KEYS[2], '*', 'id', sid, 'reason',
        'its lease ran out ' .. count .. ' times (max_deliveries ' .. max .. ')',
        'attempts', count, 'entry', f['entry'] or '', 'max_deliveries', max)
      redis.call('XACK', KEYS[1], ARGV[1], sid)
      redis.call('XDEL', KEYS[1], sid)
      uncount(f, KEYS[3])
      local client = f['client'] or ''
      if client ~= '' then
        local rk = ARGV[5] .. client
        redis.call('XADD', rk, '*', 'r', f['on_dead'] or '')
        local ttl = tonumber(f['ttl_ms'] or '') or 3600000
        if ttl < 1 or ttl > 1099511627776 then ttl = 3600000 end
        redis.call('PEXPIRE', rk, math.floor(ttl))
      end
    else
      redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, sid)
      claimed = claimed + 1
      table.insert(out, {sid, f['entry'] or '', count + 1, f['put'] and 1 or 0})
    end
  end
end
if ARGV[6] == '1' and claimed < tonumber(ARGV[4]) then
  local r = redis.call('XREADGROUP', 'GROUP', ARGV[1], ARGV[2], 'COUNT',
    tonumber(ARGV[4]) - claimed, 'STREAMS', KEYS[1], '>')
  if r then
    for _, e in ipairs(r[1][2]) do
      local f = {}
      local kv = e[2] or {}
      for i = 1, #kv, 2 do f[kv[i]] = kv[i + 1] end
      table.insert(out, {e[1], f['entry'] or '', prior(f) + 1, f['put'] and 1 or 0})
    end
  end
end
return {out, wait}
"
    ))
});

/// KEYS: stream, unfinished, stale_acks, results key. ARGV: group,
/// consumer, sid, result, ttl_ms, put (`1`/`0`: the entry's `put` field
/// as the fetch saw it; `''`: unknown, read from the entry). 1 if
/// `consumer` held the entry (acked, its result recorded, deleted), else
/// 0 (counted as stale).
static ACK: LazyLock<Script> = LazyLock::new(|| Script::new(&ACK_SRC));
static ACK_SRC: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{LUA_COMMON}{}",
        r"
local who = holder(KEYS[1], ARGV[1], ARGV[3])
if who ~= ARGV[2] then
  redis.call('INCR', KEYS[3])
  return 0
end
local f = {put = (ARGV[6] == '1') or nil}
if ARGV[6] == '' then f = fields(KEYS[1], ARGV[3]) end
if redis.call('XACK', KEYS[1], ARGV[1], ARGV[3]) ~= 1 then
  redis.call('INCR', KEYS[3])
  return 0
end
redis.call('XADD', KEYS[4], '*', 'r', ARGV[4])
redis.call('PEXPIRE', KEYS[4], tonumber(ARGV[5]))
redis.call('XDEL', KEYS[1], ARGV[3])
uncount(f, KEYS[2])
return 1
"
    )
});

/// KEYS: stream, unfinished, stale_acks, then one results key per ack.
/// ARGV: group, consumer, the lowest and the highest sid of the batch,
/// how many of the consumer's entries to list at most (see below), then
/// four per ack: sid, result, ttl_ms, put (as [`ACK`]'s: `1`/`0`, or `''`
/// to read it from the entry). Each ack as [`ACK`] does it, in order, with
/// the same outcome, 1 or 0 per ack; but the holder check is one
/// `XPENDING` of the consumer's own entries between the lowest and the
/// highest sid (an entry it misses, when the list was cut at its limit,
/// is checked alone), and the entries acked are `XACK`ed and `XDEL`ed in
/// one call each (in groups of [`LUA_UNPACK`]): held by this consumer, an
/// entry is pending, so its `XACK` is the 1 `ACK` checks for. The results
/// keys' `PEXPIRE`, the counters' `INCRBY`/`DECRBY` and the `PUBLISH` come
/// once, at the end.
static ACK_MANY: LazyLock<Script> = LazyLock::new(|| Script::new(&ACK_MANY_SRC));
static ACK_MANY_SRC: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{LUA_COMMON}local unpack_at_most = {LUA_UNPACK}\n{}",
        r"
local limit = tonumber(ARGV[5])
local mine = {}
local listed = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[3], ARGV[4], limit, ARGV[2])
for _, e in ipairs(listed) do mine[e[1]] = true end
local whole = #listed < limit
local out = {}
local expire = {}
local order = {}
local acked = {}
local stale = 0
local done = 0
for i = 1, #KEYS - 3 do
  local a = 5 + (i - 1) * 4
  local sid = ARGV[a + 1]
  local rk = KEYS[3 + i]
  local held = mine[sid]
  if held == nil and not whole then
    held = holder(KEYS[1], ARGV[1], sid) == ARGV[2]
  end
  local ok = 0
  if held then
    -- A second ack of it in this batch is stale.
    mine[sid] = false
    local put = ARGV[a + 4] == '1'
    if ARGV[a + 4] == '' then
      local f = fields(KEYS[1], sid)
      put = f ~= nil and f['put'] ~= nil
    end
    redis.call('XADD', rk, '*', 'r', ARGV[a + 2])
    if expire[rk] == nil then table.insert(order, rk) end
    expire[rk] = ARGV[a + 3]
    table.insert(acked, sid)
    if put then done = done + 1 end
    ok = 1
  end
  if ok == 0 then stale = stale + 1 end
  out[i] = ok
end
for from = 1, #acked, unpack_at_most do
  local to = math.min(from + unpack_at_most - 1, #acked)
  redis.call('XACK', KEYS[1], ARGV[1], unpack(acked, from, to))
  redis.call('XDEL', KEYS[1], unpack(acked, from, to))
end
for _, rk in ipairs(order) do redis.call('PEXPIRE', rk, tonumber(expire[rk])) end
if stale > 0 then redis.call('INCRBY', KEYS[3], stale) end
if done > 0 and redis.call('DECRBY', KEYS[2], done) <= 0 then
  redis.call('PUBLISH', KEYS[2], '0')
end
return out
"
    )
});

/// The most values a script passes to one `redis.call` through `unpack`
/// (Lua's C stack holds about 8,000).
const LUA_UNPACK: usize = 1000;

/// KEYS: stream, dead, unfinished, results key. ARGV: group, consumer,
/// sid, reason, has_client ('1'/'0'), result, ttl_ms. 1 if `consumer`
/// held the entry (now in the dead stream), else 0.
static DEAD_LETTER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LUA_COMMON}{}",
        r"
local who, count = holder(KEYS[1], ARGV[1], ARGV[3])
if who ~= ARGV[2] then return 0 end
local f = fields(KEYS[1], ARGV[3])
local entry, max = '', ''
if f then entry, max = f['entry'] or '', f['max_deliveries'] or '' end
redis.call('XADD', KEYS[2], '*', 'id', ARGV[3], 'reason', ARGV[4], 'attempts', count + prior(f), 'entry', entry,
  'max_deliveries', max)
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
uncount(f, KEYS[3])
if ARGV[5] == '1' then
  redis.call('XADD', KEYS[4], '*', 'r', ARGV[6])
  redis.call('PEXPIRE', KEYS[4], tonumber(ARGV[7]))
end
return 1
"
    ))
});

/// KEYS: stream, dead, unfinished, delayed, delayed_entries. ARGV: group,
/// consumer, sid, delay_ms. 0 if `consumer` does not hold the entry; else
/// 1, the entry out of the stream and either back at its tail now (delay
/// 0), or in `delayed` until due (the mover puts it back), or, delivered
/// max_deliveries times already, in the dead stream. Its fields travel
/// with it, `attempts` now the deliveries so far.
static NACK: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LUA_COMMON}{}",
        r"
local who, count = holder(KEYS[1], ARGV[1], ARGV[3])
if who ~= ARGV[2] then return 0 end
local e = redis.call('XRANGE', KEYS[1], ARGV[3], ARGV[3])
if #e == 0 then
  redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
  return 0
end
local kv = {}
local f = {}
local raw = e[1][2]
for i = 1, #raw, 2 do
  f[raw[i]] = raw[i + 1]
  if raw[i] ~= 'attempts' then
    table.insert(kv, raw[i])
    table.insert(kv, raw[i + 1])
  end
end
local total = count + prior(f)
local max = tonumber(f['max_deliveries'] or '1') or 1
redis.call('XACK', KEYS[1], ARGV[1], ARGV[3])
redis.call('XDEL', KEYS[1], ARGV[3])
if total >= max then
  redis.call('XADD', KEYS[2], '*', 'id', ARGV[3], 'reason',
    'delivered ' .. total .. ' times, the last one refused (max_deliveries ' .. max .. ')',
    'attempts', total, 'entry', f['entry'] or '', 'max_deliveries', max)
  uncount(f, KEYS[3])
  return 1
end
table.insert(kv, 'attempts')
table.insert(kv, tostring(total))
local delay = tonumber(ARGV[4])
if delay <= 0 then
  redis.call('XADD', KEYS[1], '*', unpack(kv))
else
  local t = redis.call('TIME')
  local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  redis.call('HSET', KEYS[5], ARGV[3], cmsgpack.pack(kv))
  redis.call('ZADD', KEYS[4], now + delay, ARGV[3])
end
return 1
"
    ))
});

/// KEYS: stream. ARGV: group, consumer, sid... How many of the entries
/// `consumer` still held (their idle time reset; the others untouched).
static EXTEND: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LUA_COMMON}{}",
        r"
local n = 0
for i = 3, #ARGV do
  if holder(KEYS[1], ARGV[1], ARGV[i]) == ARGV[2] then
    redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[2], 0, ARGV[i], 'JUSTID')
    n = n + 1
  end
end
return n
"
    ))
});

/// KEYS: stream, unfinished, delayed, delayed_entries. ARGV: group, sid.
/// 1 if the entry was still queued (in the stream and not pending, or
/// waiting in `delayed` after a nack), now deleted.
static CANCEL: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LUA_COMMON}{}",
        r"
if redis.call('ZREM', KEYS[3], ARGV[2]) == 1 then
  local packed = redis.call('HGET', KEYS[4], ARGV[2])
  redis.call('HDEL', KEYS[4], ARGV[2])
  if packed then
    local kv = cmsgpack.unpack(packed)
    local f = {}
    for i = 1, #kv, 2 do f[kv[i]] = kv[i + 1] end
    uncount(f, KEYS[2])
  end
  return 1
end
if holder(KEYS[1], ARGV[1], ARGV[2]) ~= nil then return 0 end
local f = fields(KEYS[1], ARGV[2])
if f == nil then return 0 end
redis.call('XDEL', KEYS[1], ARGV[2])
uncount(f, KEYS[2])
return 1
"
    ))
});

/// KEYS: stream, dead, unfinished, expired, stale_acks, delayed. ARGV:
/// group. {stream length, pending, unfinished, dead, expired, stale acks,
/// delayed}.
static COUNTS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        r"
local pend = redis.call('XPENDING', KEYS[1], ARGV[1])
return {redis.call('XLEN', KEYS[1]), tonumber(pend[1]),
  tonumber(redis.call('GET', KEYS[3]) or '0'), redis.call('XLEN', KEYS[2]),
  tonumber(redis.call('GET', KEYS[4]) or '0'), tonumber(redis.call('GET', KEYS[5]) or '0'),
  redis.call('ZCARD', KEYS[6])}
",
    )
});

/// Lua of the worker heartbeats: `now` is the server's clock in ms, and
/// `purge(hash, seen, expires, now)` drops the workers whose heartbeat
/// expired.
const LUA_WORKERS: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function purge(hash, seen, expires)
  local gone = redis.call('ZRANGEBYSCORE', expires, '-inf', now)
  for _, id in ipairs(gone) do
    redis.call('HDEL', hash, id)
    redis.call('ZREM', seen, id)
    redis.call('ZREM', expires, id)
  end
end
";

/// KEYS: workers, workers:seen, workers:expires. ARGV: worker, record,
/// expire_ms (0: remove the worker). The record kept, the heartbeat's time
/// and its expiry (on the server's clock).
static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LUA_WORKERS}{}",
        r"
purge(KEYS[1], KEYS[2], KEYS[3])
local exp = tonumber(ARGV[3])
if exp <= 0 then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('ZREM', KEYS[3], ARGV[1])
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], now, ARGV[1])
redis.call('ZADD', KEYS[3], now + exp, ARGV[1])
return 1
"
    ))
});

/// KEYS: workers, workers:seen, workers:expires. The live workers as
/// {id, record, age_ms}, the expired ones dropped first.
static WORKERS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{LUA_WORKERS}{}",
        r"
purge(KEYS[1], KEYS[2], KEYS[3])
local out = {}
local seen = redis.call('ZRANGE', KEYS[2], 0, -1, 'WITHSCORES')
for i = 1, #seen, 2 do
  local rec = redis.call('HGET', KEYS[1], seen[i])
  if rec then
    local age = now - tonumber(seen[i + 1])
    if age < 0 then age = 0 end
    table.insert(out, {seen[i], rec, age})
  end
end
return out
"
    ))
});

/// The keys of one queue.
#[derive(Debug)]
struct Keys {
    stream: String,
    dead: String,
    unfinished: String,
    expired: String,
    stale: String,
    results: String,
    delayed: String,
    delayed_entries: String,
    min_lease: String,
    workers: String,
    workers_seen: String,
    workers_expires: String,
}

impl Keys {
    fn new(queue: &str) -> Keys {
        let k = |s: &str| format!("{{{queue}}}:{s}");
        Keys {
            stream: k("stream"),
            dead: k("dead"),
            unfinished: k("unfinished"),
            expired: k("expired"),
            stale: k("stale_acks"),
            results: k("results:"),
            delayed: k("delayed"),
            delayed_entries: k("delayed_entries"),
            min_lease: k("min_lease"),
            workers: k("workers"),
            workers_seen: k("workers:seen"),
            workers_expires: k("workers:expires"),
        }
    }

    fn results_of(&self, client: &str) -> String {
        format!("{}{client}", self.results)
    }
}

/// How a `RedisBroker` reaches its server (from its URL's scheme).
#[derive(Debug, Clone, Copy)]
enum Transport {
    PlainTcp,
    Tls,
    Unix,
}

struct Shared {
    client: Client,
    /// TCP with or without TLS, or a Unix socket.
    transport: Transport,
    queue: String,
    keys: Keys,
    /// Idle connections of process `.0`; a connection that failed is
    /// dropped, not put back, so the next call opens a new one. A forked
    /// child (another pid) never uses its parent's: it opens its own.
    pool: Mutex<(u32, Vec<Connection>)>,
    /// Per result stream read here: the id of the last entry handed out.
    /// Entries up to it are trimmed at the next read, never before: a
    /// read whose reply is lost (the link or the server gone) reads them
    /// again.
    cursors: Mutex<HashMap<String, String>>,
}

/// One entry the mover-and-reclaimer script hands out: stream id, bytes,
/// attempt, `put` (1 or 0).
type Swept = (String, Vec<u8>, u32, i64);

/// What one reply of a [`Broker::send_batch`] pipeline answers: a
/// notice, or a run of this many acks (one `EVALSHA`).
enum Part {
    Notify,
    Acks(usize),
}

/// An entry in the dead-letter stream (`{Q}:dead`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedisDeadLetter {
    /// The entry's id (as [`Fetched::id`]), 0 if its stream id does not
    /// map to one.
    pub id: u64,
    /// Why it was given up.
    pub reason: String,
    /// How many times it was delivered.
    pub attempts: u32,
    /// The entry's bytes.
    pub entry: Vec<u8>,
}

/// The [`Broker`] on Redis Streams (Redis 6.2 or later): a queue is a
/// stream read by one consumer group, a lease is an entry's idle time in
/// the group's pending list, a result stream is a stream per client
/// (read without taking, trimmed once handed out).
///
/// Reached at `redis://[:PASSWORD@]HOST[:PORT][/DB]` or
/// `unix:///PATH/redis.sock[?pass=PASSWORD]`. Connections are opened on
/// demand and a connection that fails is dropped: after an I/O error the
/// next call reconnects (calls fail with [`BrokerError::Unavailable`]
/// while the server is gone). Each value is one consumer of the group;
/// [`consumer`](Broker::consumer) makes another with a new random name.
///
/// Unlike the embedded broker, an entry whose lease ran out is taken back
/// by a `fetch` of any worker (the reclaimer, which each consumer's fetch
/// runs every 100 ms while busy, about every second while it waits), with
/// that fetch's lease as the threshold: the workers of one queue should
/// share one lease. This crate's README.md describes the keys and
/// scripts.
#[derive(Clone)]
pub struct RedisBroker {
    shared: Arc<Shared>,
    consumer: String,
    /// This consumer's fetch state (shared by its clones: one consumer).
    local: Arc<Mutex<Local>>,
}

/// What one consumer remembers between its calls.
#[derive(Default)]
struct Local {
    /// When its fetch last ran the mover and the reclaimer.
    swept: Option<Instant>,
    /// When the next delayed entry it knows of is due.
    due: Option<Instant>,
    /// The `put` flag of each entry fetched and not yet acked (an entry's
    /// fields never change under its id): its ack then need not read the
    /// entry.
    puts: HashMap<u64, bool>,
}

impl fmt::Debug for RedisBroker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisBroker")
            .field("queue", &self.shared.queue)
            .field("consumer", &self.consumer)
            .finish_non_exhaustive()
    }
}

fn consumer_name() -> String {
    let mut id = [0u8; 8];
    let _ = getrandom::fill(&mut id);
    format!("{}-{:016x}", std::process::id(), u64::from_le_bytes(id))
}

/// Whether a failed call leaves its connection unusable.
fn broken(e: &RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.is_unrecoverable_error()
}

/// Replies that say the server cannot serve now, not that the call was
/// bad: the stream or group gone, loading, a read-only replica, a cluster
/// down. (A refused password or permission is [`AUTH_CODES`].)
const UNAVAILABLE_CODES: &[&str] = &[
    "NOGROUP",
    "LOADING",
    "READONLY",
    "MASTERDOWN",
    "CLUSTERDOWN",
    "TRYAGAIN",
    "BUSY",
];

/// Replies that say the server refused this client's credentials (or its
/// ACL user may not do this): `BrokerError::Auth`.
const AUTH_CODES: &[&str] = &["NOAUTH", "WRONGPASS", "NOPERM"];

fn to_broker_error(e: &RedisError) -> BrokerError {
    if e.kind() == ErrorKind::AuthenticationFailed
        || e.code().is_some_and(|c| AUTH_CODES.contains(&c))
    {
        BrokerError::Auth(e.to_string())
    } else if crate::tls::is_tls_error(e) {
        BrokerError::Tls(e.to_string())
    } else if broken(e) || e.code().is_some_and(|c| UNAVAILABLE_CODES.contains(&c)) {
        BrokerError::Unavailable(e.to_string())
    } else {
        BrokerError::Refused(e.to_string())
    }
}

impl RedisBroker {
    /// Connects to the Redis server at `url` (`redis://`, `rediss://`
    /// (TLS, with the system's CAs) or `unix://`) for queue `queue`,
    /// creating its stream and consumer group if they do not exist.
    ///
    /// # Errors
    ///
    /// [`BrokerError::Refused`] for a URL that does not parse or a queue
    /// name that is empty or holds `{` or `}` (the keys' hash tag);
    /// [`BrokerError::Unavailable`] if the server cannot be reached;
    /// [`BrokerError::Auth`] if it refuses the password or user;
    /// [`BrokerError::Tls`] if TLS fails (a certificate not trusted).
    pub fn connect(url: &str, queue: &str) -> Result<RedisBroker, BrokerError> {
        RedisBroker::connect_with(url, queue, &RedisTls::default())
    }

    /// [`connect`](RedisBroker::connect) with TLS settings for a
    /// `rediss://` URL: a private CA, a client certificate ([`RedisTls`]).
    ///
    /// # Errors
    ///
    /// As `connect`; [`BrokerError::Tls`] also for a CA, certificate or key
    /// file that cannot be read or holds no usable PEM, and for settings
    /// other than the default on a URL without TLS.
    pub fn connect_with(
        url: &str,
        queue: &str,
        tls: &RedisTls,
    ) -> Result<RedisBroker, BrokerError> {
        let broker = RedisBroker::open(url, queue, tls)?;
        broker.create_group()?;
        Ok(broker)
    }

    /// A client of the server at `url` for the keys of `queue`, without
    /// touching the server (the cluster `Queue` makes its own keys).
    pub(crate) fn open(url: &str, queue: &str, tls: &RedisTls) -> Result<RedisBroker, BrokerError> {
        if queue.is_empty() || queue.contains(['{', '}']) {
            return Err(BrokerError::Refused(format!(
                "queue name {queue:?}: empty or holds '{{' or '}}'"
            )));
        }
        let client = crate::tls::client(url, tls)?;
        let broker = RedisBroker {
            shared: Arc::new(Shared {
                transport: if crate::tls::is_tls_url(url) {
                    Transport::Tls
                } else if url.starts_with("redis://") || url.starts_with("valkey://") {
                    Transport::PlainTcp
                } else {
                    Transport::Unix
                },
                client,
                queue: queue.to_owned(),
                keys: Keys::new(queue),
                pool: Mutex::new((std::process::id(), Vec::new())),
                cursors: Mutex::new(HashMap::new()),
            }),
            consumer: consumer_name(),
            local: Arc::default(),
        };
        Ok(broker)
    }

    /// The queue's name.
    pub fn queue(&self) -> &str {
        &self.shared.queue
    }

    /// This consumer's name in the group.
    pub fn consumer_name(&self) -> &str {
        &self.consumer
    }

    /// The oldest `max` dead letters.
    ///
    /// # Errors
    ///
    /// As every call: [`BrokerError::Unavailable`] if the server is gone.
    pub fn dead_letters(&self, max: usize) -> Result<Vec<RedisDeadLetter>, BrokerError> {
        let dead = self.shared.keys.dead.clone();
        let reply: Vec<(String, HashMap<String, Vec<u8>>)> = self.with_conn(|c| {
            redis::cmd("XRANGE")
                .arg(&dead)
                .arg("-")
                .arg("+")
                .arg("COUNT")
                .arg(max.max(1))
                .query(c)
        })?;
        Ok(reply
            .into_iter()
            .map(|(_, kv)| {
                let mut d = RedisDeadLetter {
                    id: 0,
                    reason: String::new(),
                    attempts: 0,
                    entry: Vec::new(),
                };
                for (k, v) in kv {
                    let s = || String::from_utf8_lossy(&v).into_owned();
                    match k.as_str() {
                        "id" => d.id = id_of(&s()).unwrap_or(0),
                        "reason" => d.reason = s(),
                        "attempts" => d.attempts = s().parse().unwrap_or(0),
                        "entry" => d.entry = v,
                        _ => {}
                    }
                }
                d
            })
            .collect())
    }

    fn create_group(&self) -> Result<(), BrokerError> {
        let stream = self.shared.keys.stream.clone();
        let r: Result<(), BrokerError> = self.with_conn(|c| {
            redis::cmd("XGROUP")
                .arg("CREATE")
                .arg(&stream)
                .arg(GROUP)
                .arg("0")
                .arg("MKSTREAM")
                .query(c)
        });
        match r {
            Err(BrokerError::Refused(m)) if m.contains("BUSYGROUP") => Ok(()),
            r => r,
        }
    }

    /// Runs `f` on a pooled connection (a new one if none is idle); a
    /// connection whose call failed on I/O is dropped.
    ///
    /// A pooled connection that fails on I/O is tried once more with a
    /// new connection: it sat idle while the server closed it (a restart,
    /// an idle timeout), so the call could not have run on the server
    /// there is now, and the first call after a restart must not fail.
    /// If instead the link broke in the middle of the call (its reply
    /// lost), the call may run twice: a `put` is then delivered twice
    /// (at least once, as a worker's death can do), an ack, dead letter
    /// or cancel counts once (the second finds it done).
    pub(crate) fn with_conn<T>(
        &self,
        mut f: impl FnMut(&mut Connection) -> Result<T, RedisError>,
    ) -> Result<T, BrokerError> {
        let idle = self.shared.pool.lock().ok().and_then(|mut p| {
            if p.0 != std::process::id() {
                // Forked: the parent's connections are its own. Forget
                // them without a word on their sockets (just close ours).
                *p = (std::process::id(), Vec::new());
            }
            p.1.pop()
        });
        let pooled = idle.is_some();
        let mut conn = match idle {
            Some(c) => c,
            None => self.new_conn()?,
        };
        let mut r = f(&mut conn);
        if pooled && matches!(&r, Err(e) if broken(e)) {
            conn = self.new_conn()?;
            r = f(&mut conn);
        }
        match r {
            Ok(v) => {
                self.give_back(conn);
                Ok(v)
            }
            Err(e) => {
                if !broken(&e) {
                    self.give_back(conn);
                }
                if e.code() == Some("NOGROUP") {
                    // The stream or group went away (a flushed or
                    // restarted server): make them again for next time.
                    let _ = self.create_group();
                }
                Err(to_broker_error(&e))
            }
        }
    }

    /// A new connection, with the read and write timeouts.
    fn new_conn(&self) -> Result<Connection, BrokerError> {
        let c = self
            .shared
            .client
            .get_connection_with_timeout(CONNECT_TIMEOUT)
            .map_err(|e| self.open_error(&e))?;
        c.set_read_timeout(Some(IO_TIMEOUT))
            .and_then(|()| c.set_write_timeout(Some(IO_TIMEOUT)))
            .map_err(|e| BrokerError::Unavailable(e.to_string()))?;
        Ok(c)
    }

    /// Why a connection could not be opened: as every call's error, with
    /// the likely cause when TLS and plain ports are mixed up. A plain TCP
    /// connection the server closed before its first reply may be at a
    /// TLS-only port (Redis ends a TLS handshake at a plain client's first
    /// bytes); a TLS connection that timed out may be at a plain port (a
    /// Redis plain port never answers a TLS handshake).
    fn open_error(&self, e: &RedisError) -> BrokerError {
        let b = to_broker_error(e);
        let timed_out = crate::tls::timed_out(e);
        match (b, self.shared.transport) {
            (BrokerError::Unavailable(m), Transport::PlainTcp)
                if e.is_connection_dropped() && !e.is_connection_refusal() && !timed_out =>
            {
                BrokerError::Unavailable(format!(
                    "{m} (the server closed the connection before it answered: if it \
                     serves TLS only, use a rediss:// URL)"
                ))
            }
            (BrokerError::Unavailable(m), Transport::Tls) if timed_out => {
                BrokerError::Unavailable(format!(
                    "{m} (no answer within {}s of opening the connection: if this \
                     port does not serve TLS, the server never answers the TLS \
                     handshake; use a redis:// URL for a plain port)",
                    CONNECT_TIMEOUT.as_secs()
                ))
            }
            (b, _) => b,
        }
    }

    /// The pipeline of [`send_batch`](Broker::send_batch) (behind a
    /// `SCRIPT LOAD` of [`ACK_MANY`] with `load`), and what each of its
    /// replies answers.
    fn batch_pipe(
        &self,
        ops: &[Outgoing<'_>],
        puts: &[&str],
        load: bool,
    ) -> (redis::Pipeline, Vec<Part>) {
        let k = &self.shared.keys;
        let mut pipe = redis::pipe();
        if load {
            pipe.cmd("SCRIPT")
                .arg("LOAD")
                .arg(ACK_MANY_SRC.as_str())
                .ignore();
        }
        let mut parts = Vec::new();
        let mut i = 0;
        while i < ops.len() {
            match ops[i] {
                Outgoing::Notify {
                    client,
                    message,
                    ttl,
                } => {
                    let key = k.results_of(client);
                    pipe.cmd("XADD").arg(&key).arg("*").arg("r").arg(message);
                    // The next notice to the same stream sets the same
                    // expiry after its own XADD.
                    let same_next = matches!(
                        ops.get(i + 1),
                        Some(Outgoing::Notify { client: c, ttl: t, .. }) if *c == client && *t == ttl
                    );
                    if !same_next {
                        pipe.cmd("PEXPIRE").arg(&key).arg(millis(ttl)).ignore();
                    }
                    parts.push(Part::Notify);
                    i += 1;
                }
                Outgoing::Ack { .. } => {
                    let run: Vec<(u64, &str, &[u8], Duration, &str)> = ops[i..]
                        .iter()
                        .zip(&puts[i..])
                        .map_while(|(op, put)| match *op {
                            Outgoing::Ack {
                                id,
                                client,
                                result,
                                ttl,
                            } => Some((id, client, result, ttl, *put)),
                            Outgoing::Notify { .. } => None,
                        })
                        .collect();
                    let cmd = pipe.cmd("EVALSHA");
                    cmd.arg(ACK_MANY.get_hash())
                        .arg(3 + run.len())
                        .arg(&k.stream)
                        .arg(&k.unfinished)
                        .arg(&k.stale);
                    for (_, client, _, _, _) in &run {
                        cmd.arg(k.results_of(client));
                    }
                    let lo = run.iter().map(|r| r.0).min().unwrap_or(0);
                    let hi = run.iter().map(|r| r.0).max().unwrap_or(0);
                    cmd.arg(GROUP)
                        .arg(&self.consumer)
                        .arg(sid_of(lo))
                        .arg(sid_of(hi))
                        .arg(ack_listing_limit(run.len()));
                    for (id, _, result, ttl, put) in &run {
                        cmd.arg(sid_of(*id))
                            .arg(*result)
                            .arg(millis(*ttl))
                            .arg(*put);
                    }
                    parts.push(Part::Acks(run.len()));
                    i += run.len();
                }
            }
        }
        (pipe, parts)
    }

    /// [`CANCEL`] of stream id `sid`: whether it took a queued entry out.
    fn cancel_sid(&self, sid: &str) -> Result<bool, BrokerError> {
        let k = &self.shared.keys;
        let n: i64 = self.with_conn(|c| {
            CANCEL
                .key(&k.stream)
                .key(&k.unfinished)
                .key(&k.delayed)
                .key(&k.delayed_entries)
                .arg(GROUP)
                .arg(sid)
                .invoke(c)
        })?;
        Ok(n == 1)
    }

    fn give_back(&self, conn: Connection) {
        if let Ok(mut p) = self.shared.pool.lock()
            && p.0 == std::process::id()
            && p.1.len() < POOL
        {
            p.1.push(conn);
        }
    }

    /// The mover and the reclaimer (one script): the entries reclaimed,
    /// and how long until the next nacked entry is due, if any.
    fn reclaim(
        &self,
        n: usize,
        lease: Duration,
        read_new: bool,
    ) -> Result<(Vec<Fetched>, Option<Duration>), BrokerError> {
        let k = &self.shared.keys;
        let (got, wait): (Vec<Swept>, i64) = self.with_conn(|c| {
            RECLAIM
                .key(&k.stream)
                .key(&k.dead)
                .key(&k.unfinished)
                .key(&k.expired)
                .key(&k.delayed)
                .key(&k.delayed_entries)
                .key(&k.min_lease)
                .arg(GROUP)
                .arg(&self.consumer)
                .arg(millis(lease))
                .arg(n)
                .arg(&k.results)
                .arg(if read_new { "1" } else { "0" })
                .invoke(c)
        })?;
        let due = u64::try_from(wait).ok().map(Duration::from_millis);
        let got = got
            .into_iter()
            .map(|(sid, bytes, attempt, put)| (sid, bytes, attempt, put == 1))
            .collect();
        Ok((self.named(got)?, due))
    }

    /// The fetched entries (`sid, bytes, attempt, put`) with their ids,
    /// their `put` flags kept for their acks; an entry whose stream id has
    /// no `u64` id (added by hand with an explicit id) is dead-lettered.
    fn named(&self, got: Vec<(String, Vec<u8>, u32, bool)>) -> Result<Vec<Fetched>, BrokerError> {
        let mut out = Vec::with_capacity(got.len());
        let mut dead = Vec::new();
        {
            let mut l = self.lock_local();
            if l.puts.len() + got.len() > PUT_FLAGS {
                l.puts.clear();
            }
            for (sid, bytes, attempt, put) in got {
                match id_of(&sid) {
                    Some(id) => {
                        l.puts.insert(id, put);
                        out.push(Fetched { id, bytes, attempt });
                    }
                    None => dead.push(sid),
                }
            }
        }
        for sid in dead {
            self.dead_letter_sid(
                &sid,
                "its stream id does not fit a u64 id (ms < 2^42, seq < 2^22)",
                None,
                Duration::from_secs(1),
            )?;
        }
        Ok(out)
    }

    /// This consumer's [`Local`] (a poisoned lock's data is still good:
    /// every update leaves it consistent).
    fn lock_local(&self) -> std::sync::MutexGuard<'_, Local> {
        self.local
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Whether the fetch should run the mover and the reclaimer now: never
    /// yet, [`SWEEP_EVERY`] since the last time, or a known delayed entry
    /// due.
    fn sweep_due(&self, now: Instant) -> bool {
        let l = self.lock_local();
        l.swept.is_none_or(|t| now >= t + SWEEP_EVERY) || l.due.is_some_and(|d| now >= d)
    }

    /// How long a plain read may block: until the next delayed entry this
    /// consumer knows of is due (a read that finds nothing blocks up to
    /// [`BLOCK_STEP`] otherwise, as it did when every round ran the
    /// script: an idle consumer sweeps about once a second).
    fn until_due(&self, now: Instant) -> Duration {
        self.lock_local()
            .due
            .map_or(BLOCK_STEP, |d| d.saturating_duration_since(now))
    }

    fn read_new(&self, n: usize, block: Option<Duration>) -> Result<Vec<Fetched>, BrokerError> {
        let stream = &self.shared.keys.stream;
        let entries = self.with_conn(|c| {
            let mut cmd = redis::cmd("XREADGROUP");
            cmd.arg("GROUP")
                .arg(GROUP)
                .arg(&self.consumer)
                .arg("COUNT")
                .arg(n);
            if let Some(b) = block {
                cmd.arg("BLOCK").arg(millis(b));
            }
            stream_entries(cmd.arg("STREAMS").arg(stream).arg(">").query(c)?)
        })?;
        let mut got = Vec::with_capacity(entries.len());
        for (id, mut fields) in entries {
            let bytes = match take_field(&mut fields, b"entry") {
                Some(Value::BulkString(b)) => b,
                _ => Vec::new(),
            };
            // A nacked entry's deliveries before this one.
            let prior = match take_field(&mut fields, b"attempts") {
                Some(Value::BulkString(b)) => std::str::from_utf8(&b)
                    .ok()
                    .and_then(|s| s.parse::<u32>().ok())
                    .unwrap_or(0),
                _ => 0,
            };
            let put = take_field(&mut fields, b"put").is_some();
            got.push((id, bytes, prior.saturating_add(1), put));
        }
        self.named(got)
    }

    fn dead_letter_sid(
        &self,
        sid: &str,
        reason: &str,
        client: Option<(&str, &[u8])>,
        ttl: Duration,
    ) -> Result<bool, BrokerError> {
        let k = &self.shared.keys;
        let (rk, has, result) = match client {
            Some((c, r)) => (k.results_of(c), "1", r),
            None => (k.results_of(""), "0", &[][..]),
        };
        let n: i64 = self.with_conn(|c| {
            DEAD_LETTER
                .key(&k.stream)
                .key(&k.dead)
                .key(&k.unfinished)
                .key(&rk)
                .arg(GROUP)
                .arg(&self.consumer)
                .arg(sid)
                .arg(reason)
                .arg(has)
                .arg(result)
                .arg(millis(ttl))
                .invoke(c)
        })?;
        Ok(n == 1)
    }
}

impl Broker for RedisBroker {
    fn put_with(&self, entry: &[u8], o: &PutOptions<'_>) -> Result<u64, BrokerError> {
        let (max_deliveries, client, on_dead, ttl) = (o.max_deliveries, o.client, o.on_dead, o.ttl);
        let lease = o.lease.map(|l| millis(l).to_string()).unwrap_or_default();
        if max_deliveries == 0 {
            return Err(BrokerError::Refused(
                "max_deliveries must be at least 1".into(),
            ));
        }
        let k = &self.shared.keys;
        let sid: String = self.with_conn(|c| {
            PUT.key(&k.stream)
                .key(&k.unfinished)
                .key(&k.min_lease)
                .arg(entry)
                .arg(max_deliveries)
                .arg(client)
                .arg(on_dead)
                .arg(millis(ttl))
                .arg(&lease)
                .invoke(c)
        })?;
        match id_of(&sid) {
            Some(id) => Ok(id),
            None => {
                // Only with a server clock past the year 2109: take it out.
                let _ = self.cancel_sid(&sid);
                Err(BrokerError::Refused(format!(
                    "stream id {sid} does not fit a u64 id"
                )))
            }
        }
    }

    /// One round trip: `PUT_MANY`, one script over every entry (so
    /// all of them are put, or none if the server refuses the call).
    fn put_batch(&self, entries: &[PutEntry<'_>]) -> Result<Vec<u64>, BrokerError> {
        if entries.is_empty() {
            return Ok(Vec::new());
        }
        if entries.iter().any(|e| e.options.max_deliveries == 0) {
            return Err(BrokerError::Refused(
                "max_deliveries must be at least 1".into(),
            ));
        }
        let k = &self.shared.keys;
        let leases: Vec<String> = entries
            .iter()
            .map(|e| {
                e.options
                    .lease
                    .map(|l| millis(l).to_string())
                    .unwrap_or_default()
            })
            .collect();
        let sids: Vec<String> = self.with_conn(|c| {
            let mut inv = PUT_MANY.key(&k.stream);
            inv.key(&k.unfinished).key(&k.min_lease);
            for (e, lease) in entries.iter().zip(&leases) {
                let o = &e.options;
                inv.arg(e.entry)
                    .arg(o.max_deliveries)
                    .arg(o.client)
                    .arg(o.on_dead)
                    .arg(millis(o.ttl))
                    .arg(lease);
            }
            inv.invoke(c)
        })?;
        let ids: Option<Vec<u64>> = sids.iter().map(|sid| id_of(sid)).collect();
        match ids {
            Some(ids) if ids.len() == entries.len() => Ok(ids),
            _ => {
                // Only with a server clock past the year 2109: take them
                // all out (none of the ids can be told).
                for sid in &sids {
                    let _ = self.cancel_sid(sid);
                }
                Err(BrokerError::Refused(format!(
                    "stream ids {sids:?} do not all fit a u64 id"
                )))
            }
        }
    }

    fn fetch(
        &self,
        n: usize,
        wait: Duration,
        lease: Duration,
    ) -> Result<Vec<Fetched>, BrokerError> {
        let n = n.max(1);
        let deadline = Instant::now() + wait;
        loop {
            let mut got = Vec::new();
            let now = Instant::now();
            if self.sweep_due(now) {
                // The mover, the reclaimer and a read of new entries: one
                // round trip when work is waiting.
                let (g, due) = self.reclaim(n, lease, true)?;
                let mut l = self.lock_local();
                l.swept = Some(now);
                l.due = due.map(|d| now + d);
                got = g;
            }
            if got.is_empty() {
                // A plain read (no script): it waits for new entries, but
                // not past the next known delayed entry's due time (the
                // mover runs in the next round), and never BLOCK 0
                // (forever).
                let now = Instant::now();
                let step = deadline
                    .saturating_duration_since(now)
                    .min(BLOCK_STEP)
                    .min(self.until_due(now));
                let block = (step >= Duration::from_millis(1)).then_some(step);
                got = self.read_new(n, block)?;
            }
            if !got.is_empty() || Instant::now() >= deadline {
                return Ok(got);
            }
        }
    }

    fn ack_with_result(
        &self,
        id: u64,
        client: &str,
        result: &[u8],
        ttl: Duration,
    ) -> Result<bool, BrokerError> {
        let k = &self.shared.keys;
        let put = match self.lock_local().puts.remove(&id) {
            Some(true) => "1",
            Some(false) => "0",
            None => "",
        };
        let n: i64 = self.with_conn(|c| {
            ACK.key(&k.stream)
                .key(&k.unfinished)
                .key(&k.stale)
                .key(k.results_of(client))
                .arg(GROUP)
                .arg(&self.consumer)
                .arg(sid_of(id))
                .arg(result)
                .arg(millis(ttl))
                .arg(put)
                .invoke(c)
        })?;
        Ok(n == 1)
    }

    /// One pipelined round trip: the ops in order, a notify's `XADD` +
    /// `PEXPIRE` (one `PEXPIRE` for a run of notices to the same client),
    /// each run of consecutive acks one `EVALSHA` of `ACK_MANY`, which
    /// acks each as [`ack_with_result`](Broker::ack_with_result) does. If
    /// the server does not know the script (`NOSCRIPT`: a restarted or
    /// flushed server; no ack ran), the batch is sent again behind a
    /// `SCRIPT LOAD` in one pipeline (its notices then go twice: a hint,
    /// which the client reads as once).
    fn send_batch(&self, ops: &[Outgoing<'_>]) -> Result<Vec<bool>, BrokerError> {
        if ops.is_empty() {
            return Ok(Vec::new());
        }
        let puts: Vec<&str> = {
            let mut l = self.lock_local();
            ops.iter()
                .map(|op| match op {
                    Outgoing::Ack { id, .. } => match l.puts.remove(id) {
                        Some(true) => "1",
                        Some(false) => "0",
                        None => "",
                    },
                    Outgoing::Notify { .. } => "",
                })
                .collect()
        };
        let (pipe, parts) = self.batch_pipe(ops, &puts, false);
        let replies: Vec<Value> = self.with_conn(|c| match pipe.query::<Vec<Value>>(c) {
            Err(e) if e.code() == Some("NOSCRIPT") => self.batch_pipe(ops, &puts, true).0.query(c),
            r => r,
        })?;
        let mut counted = Vec::with_capacity(ops.len());
        for (part, reply) in parts.iter().zip(replies) {
            match (part, reply) {
                (Part::Notify, _) => counted.push(true),
                (Part::Acks(n), Value::Array(each)) => {
                    counted.extend(
                        each.iter()
                            .map(|r| matches!(r, Value::Int(1)))
                            .chain(std::iter::repeat(false))
                            .take(*n),
                    );
                }
                (Part::Acks(n), _) => counted.extend(std::iter::repeat_n(false, *n)),
            }
        }
        counted.resize(ops.len(), false);
        Ok(counted)
    }

    fn dead_letter(
        &self,
        id: u64,
        reason: &str,
        client: Option<(&str, &[u8])>,
        ttl: Duration,
    ) -> Result<bool, BrokerError> {
        self.lock_local().puts.remove(&id);
        self.dead_letter_sid(&sid_of(id), reason, client, ttl)
    }

    fn nack(&self, id: u64, delay: Duration) -> Result<bool, BrokerError> {
        let k = &self.shared.keys;
        {
            let mut l = self.lock_local();
            l.puts.remove(&id);
            if !delay.is_zero() {
                // This consumer's fetch moves it back once due.
                let at = Instant::now() + delay;
                l.due = Some(l.due.map_or(at, |d| d.min(at)));
            }
        }
        let delay_ms = if delay.is_zero() { 0 } else { millis(delay) };
        let n: i64 = self.with_conn(|c| {
            NACK.key(&k.stream)
                .key(&k.dead)
                .key(&k.unfinished)
                .key(&k.delayed)
                .key(&k.delayed_entries)
                .arg(GROUP)
                .arg(&self.consumer)
                .arg(sid_of(id))
                .arg(delay_ms)
                .invoke(c)
        })?;
        Ok(n == 1)
    }

    fn notify(&self, client: &str, message: &[u8], ttl: Duration) -> Result<(), BrokerError> {
        let key = self.shared.keys.results_of(client);
        self.with_conn(|c| {
            redis::pipe()
                .atomic()
                .cmd("XADD")
                .arg(&key)
                .arg("*")
                .arg("r")
                .arg(message)
                .ignore()
                .cmd("PEXPIRE")
                .arg(&key)
                .arg(millis(ttl))
                .ignore()
                .query::<()>(c)
        })
    }

    fn results(
        &self,
        client: &str,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Vec<u8>>, BrokerError> {
        let key = self.shared.keys.results_of(client);
        let max = max.max(1);
        let last = self
            .shared
            .cursors
            .lock()
            .ok()
            .and_then(|c| c.get(&key).cloned())
            .unwrap_or_else(|| "0-0".to_owned());
        // Entries up to `last` were handed out by the previous call: trim
        // them (XTRIM MINID is idempotent: a trim sent twice removes
        // nothing unread), then read past `last`, without taking anything
        // (XREAD): a reply lost on the way costs a re-read, never a result.
        let trim_below = match last.split_once('-') {
            Some((ms, seq)) if last != "0-0" => {
                seq.parse::<u64>().ok().map(|q| format!("{ms}-{}", q + 1))
            }
            _ => None,
        };
        let deadline = Instant::now() + wait;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            // Never BLOCK 0 (forever): at most one step per round trip.
            let block = (left >= Duration::from_millis(1)).then(|| millis(left.min(BLOCK_STEP)));
            let entries = self.with_conn(|c| {
                let mut p = redis::pipe();
                if let Some(t) = &trim_below {
                    p.cmd("XTRIM").arg(&key).arg("MINID").arg(t).ignore();
                }
                let read = p.cmd("XREAD").arg("COUNT").arg(max);
                if let Some(ms) = block {
                    read.arg("BLOCK").arg(ms);
                }
                read.arg("STREAMS").arg(&key).arg(&last);
                stream_entries(p.query::<(Value,)>(c)?.0)
            })?;
            let mut got = Vec::with_capacity(entries.len());
            let mut newest = None;
            for (id, mut fields) in entries {
                if let Some(Value::BulkString(b)) = take_field(&mut fields, b"r") {
                    got.push(b);
                }
                newest = Some(id);
            }
            if let Some(id) = newest {
                if let Ok(mut c) = self.shared.cursors.lock() {
                    c.insert(key.clone(), id);
                }
                return Ok(got);
            }
            if block.is_none() || Instant::now() >= deadline {
                return Ok(Vec::new());
            }
        }
    }

    fn extend(&self, ids: &[u64], _lease: Duration) -> Result<usize, BrokerError> {
        if ids.is_empty() {
            return Ok(0);
        }
        let stream = &self.shared.keys.stream;
        let n: i64 = self.with_conn(|c| {
            let mut inv = EXTEND.key(stream);
            inv.arg(GROUP).arg(&self.consumer);
            for &id in ids {
                inv.arg(sid_of(id));
            }
            inv.invoke(c)
        })?;
        Ok(usize::try_from(n).unwrap_or(0))
    }

    fn cancel(&self, id: u64) -> Result<bool, BrokerError> {
        self.cancel_sid(&sid_of(id))
    }

    fn counts(&self) -> Result<BrokerCounts, BrokerError> {
        let k = &self.shared.keys;
        let v: Vec<i64> = self.with_conn(|c| {
            COUNTS
                .key(&k.stream)
                .key(&k.dead)
                .key(&k.unfinished)
                .key(&k.expired)
                .key(&k.stale)
                .key(&k.delayed)
                .arg(GROUP)
                .invoke(c)
        })?;
        let at = |i: usize| u64::try_from(v.get(i).copied().unwrap_or(0)).unwrap_or(0);
        let (len, pending, delayed) = (at(0), at(1), at(6));
        Ok(BrokerCounts {
            queued: len.saturating_sub(pending) + delayed,
            delayed,
            in_flight: pending,
            unfinished: at(2),
            dead_total: at(3),
            expired: at(4),
            stale_acks: at(5),
        })
    }

    fn join(&self, timeout: Option<Duration>) -> Result<bool, BrokerError> {
        // Subscribe first, then read the counter: a PUBLISH between the two
        // is not missed. The counter is read again every 250 ms all the
        // same (pub/sub drops what is published while a connection is
        // down), and a subscription that breaks falls back to that.
        let deadline = timeout.map(|t| Instant::now() + t);
        let key = self.shared.keys.unfinished.clone();
        let mut sub = self.new_conn().ok();
        let mut ps = sub.as_mut().map(Connection::as_pubsub);
        if let Some(p) = ps.as_mut()
            && p.subscribe(&key).is_err()
        {
            ps = None;
        }
        loop {
            let left: i64 = self.with_conn(|c| {
                redis::cmd("GET")
                    .arg(&key)
                    .query::<Option<i64>>(c)
                    .map(Option::unwrap_or_default)
            })?;
            if left <= 0 {
                return Ok(true);
            }
            let now = Instant::now();
            let wait = match deadline {
                Some(d) if now >= d => return Ok(false),
                Some(d) => (d - now).min(JOIN_REREAD),
                None => JOIN_REREAD,
            };
            match ps.as_mut() {
                Some(p) => {
                    let got = p
                        .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
                        .and_then(|()| p.get_message().map(drop));
                    if got.as_ref().is_err_and(|e| !e.is_timeout()) {
                        ps = None;
                    }
                }
                None => std::thread::sleep(wait.min(Duration::from_millis(10))),
            }
        }
    }

    fn retry_dead(&self) -> Result<u64, BrokerError> {
        let k = &self.shared.keys;
        self.with_conn(|c| {
            RETRY_DEAD
                .key(&k.dead)
                .key(&k.stream)
                .key(&k.unfinished)
                .arg(crate::executor::TaskOptions::default().max_deliveries)
                .invoke(c)
        })
    }

    fn purge_dead(&self) -> Result<u64, BrokerError> {
        let k = &self.shared.keys;
        self.with_conn(|c| PURGE_DEAD.key(&k.dead).invoke(c))
    }

    fn heartbeat(&self, worker: &str, record: &[u8], expire: Duration) -> Result<(), BrokerError> {
        let k = &self.shared.keys;
        let expire_ms = if expire.is_zero() { 0 } else { millis(expire) };
        self.with_conn(|c| {
            HEARTBEAT
                .key(&k.workers)
                .key(&k.workers_seen)
                .key(&k.workers_expires)
                .arg(worker)
                .arg(record)
                .arg(expire_ms)
                .invoke::<i64>(c)
        })
        .map(|_| ())
    }

    fn workers(&self) -> Result<Vec<Heartbeat>, BrokerError> {
        let k = &self.shared.keys;
        let got: Vec<(String, Vec<u8>, i64)> = self.with_conn(|c| {
            WORKERS
                .key(&k.workers)
                .key(&k.workers_seen)
                .key(&k.workers_expires)
                .invoke(c)
        })?;
        Ok(got
            .into_iter()
            .map(|(worker, record, age)| Heartbeat {
                worker,
                record,
                age: Duration::from_millis(u64::try_from(age).unwrap_or(0)),
            })
            .collect())
    }

    fn consumer(&self) -> Arc<dyn Broker> {
        Arc::new(RedisBroker {
            shared: self.shared.clone(),
            consumer: consumer_name(),
            local: Arc::default(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip() {
        for sid in ["0-0", "1-1", "1765000000000-0", "1765000000000-4194303"] {
            assert_eq!(sid_of(id_of(sid).unwrap()), sid);
        }
        assert_eq!(id_of("1-4194304"), None);
        assert_eq!(id_of(&format!("{}-0", 1u64 << 42)), None);
        assert_eq!(id_of("garbage"), None);
    }

    fn bulk(b: &[u8]) -> Value {
        Value::BulkString(b.to_vec())
    }

    fn entry(id: &str, fields: &[(&[u8], &[u8])]) -> Value {
        let kv = fields
            .iter()
            .flat_map(|(k, v)| [bulk(k), bulk(v)])
            .collect();
        Value::Array(vec![bulk(id.as_bytes()), Value::Array(kv)])
    }

    /// Both reply shapes (RESP2 arrays, RESP3 maps) and nil read alike;
    /// anything else is an error naming the part that is wrong.
    #[test]
    fn stream_replies_are_read_without_copies() {
        let entries = Value::Array(vec![
            entry("1-0", &[(b"entry", b"e1"), (b"put", b"1")]),
            entry("2-0", &[(b"entry", b"e2"), (b"attempts", b"3")]),
        ]);
        let resp2 = Value::Array(vec![Value::Array(vec![bulk(b"s"), entries.clone()])]);
        let resp3 = Value::Map(vec![(bulk(b"s"), entries)]);
        for reply in [resp2, resp3] {
            let mut got = stream_entries(reply).unwrap();
            assert_eq!(got.len(), 2);
            assert_eq!((got[0].0.as_str(), got[1].0.as_str()), ("1-0", "2-0"));
            let f = &mut got[1].1;
            assert_eq!(take_field(f, b"attempts"), Some(bulk(b"3")));
            assert_eq!(take_field(f, b"put"), None);
            assert_eq!(take_field(f, b"entry"), Some(bulk(b"e2")));
            // Taken: what is left there is nil.
            assert_eq!(take_field(f, b"entry"), Some(Value::Nil));
        }
        assert!(stream_entries(Value::Nil).unwrap().is_empty());
        let deleted = Value::Array(vec![Value::Array(vec![
            bulk(b"s"),
            Value::Array(vec![Value::Array(vec![bulk(b"3-0"), Value::Nil])]),
        ])]);
        assert_eq!(
            stream_entries(deleted).unwrap(),
            vec![("3-0".to_owned(), Vec::new())]
        );
        for bad in [
            Value::Int(3),
            Value::Array(vec![bulk(b"s")]),
            Value::Array(vec![Value::Array(vec![bulk(b"s"), Value::Int(1)])]),
            Value::Array(vec![Value::Array(vec![
                bulk(b"s"),
                Value::Array(vec![Value::Array(vec![
                    Value::Int(1),
                    Value::Array(vec![]),
                ])]),
            ])]),
        ] {
            let e = stream_entries(bad).unwrap_err();
            assert!(e.to_string().contains("not a stream reply"), "{e}");
        }
    }
}
