// compat/kafkajs: KafkaJS 2.2.4 against a broker.
// Protocol (compat/scenario.py): --list | --bootstrap B --prefix P [--only a,b] -> JSON lines on stdout.
'use strict'

const { Kafka, CompressionTypes, CompressionCodecs, logLevel } = require('kafkajs')
const SnappyCodec = require('kafkajs-snappy')
const lz4js = require('lz4js')
const xxh32 = require('lz4js/xxh32.js')

CompressionCodecs[CompressionTypes.Snappy] = SnappyCodec
// LZ4 frame format via the pure-JS lz4js (no native build). lz4js leaves the block-independence
// flag unset, which Kafka rejects ("dependent block stream is unsupported"); its single 4 MiB block
// is independent anyway, so set the flag and redo the header checksum.
function lz4Frame (buf) {
  const out = Buffer.from(lz4js.compress(buf))
  out[4] |= 0x20
  out[6] = (xxh32.hash(0, out, 4, 2) >> 8) & 0xff
  return out
}
CompressionCodecs[CompressionTypes.LZ4] = () => ({
  async compress (encoder) { return lz4Frame(encoder.buffer) },
  async decompress (buffer) { return Buffer.from(lz4js.decompress(buffer)) }
})

const args = process.argv.slice(2)
const opt = (name, dflt) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1] : dflt }

const RECORDS = [
  { key: 'k0', value: 'v0', headers: { h1: 'a' } },
  { key: null, value: 'null-key' },
  { key: 'tomb', value: null },
  { key: '', value: '', headers: { empty: '' } },
  { key: 'k4', value: 'v'.repeat(1000), headers: { dup: ['1', '2'] } }
]

function check (cond, msg) { if (!cond) throw new Error(msg) }
function eq (actual, expected, what) {
  const a = JSON.stringify(actual); const e = JSON.stringify(expected)
  if (a !== e) throw new Error(`${what}: expected ${e}, got ${a}`)
}

function kafka (ctx) {
  return new Kafka({
    clientId: 'compat-kafkajs',
    brokers: ctx.bootstrap.split(','), // a cluster: several, comma-separated
    connectionTimeout: 3000,
    requestTimeout: 10000,
    retry: { retries: 3, initialRetryTime: 100, maxRetryTime: 1000 },
    logLevel: logLevel.ERROR,
    logCreator: () => ({ namespace, level, label, log }) => {
      process.stderr.write(`[kafkajs ${label}] ${namespace} ${log.message} ${JSON.stringify(log)}\n`)
    }
  })
}

async function produce (ctx, topic, opts = {}, records = RECORDS) {
  const p = kafka(ctx).producer({ allowAutoTopicCreation: true, ...(opts.producer || {}) })
  await p.connect()
  try {
    const res = await p.send({ topic, messages: records, compression: opts.compression, acks: opts.acks })
    return res
  } finally { await p.disconnect() }
}

// KafkaJS consumers always join a group (no assign()): consuming needs the group APIs.
async function consume (ctx, topic, n, opts = {}) {
  const c = kafka(ctx).consumer({ groupId: opts.groupId || `${topic}-reader`, sessionTimeout: 10000, ...(opts.consumer || {}) })
  await c.connect()
  const got = []
  try {
    await c.subscribe({ topic, fromBeginning: true })
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`consumed ${got.length} of ${n} records before the timeout`)), 20000)
      c.run({
        autoCommit: opts.autoCommit !== false,
        eachMessage: async ({ message }) => {
          got.push(message)
          if (got.length >= n) { clearTimeout(timer); resolve() }
        }
      }).catch(reject)
    })
    if (opts.after) await opts.after(c, got)
  } finally { await c.disconnect() }
  return got
}

function str (b) { return b === null || b === undefined ? null : b.toString() }

function checkRecords (got, expected = RECORDS) {
  eq(got.length, expected.length, 'record count')
  got.forEach((m, i) => {
    const e = expected[i]
    eq(m.offset, String(i), `offset of record ${i}`)
    eq(str(m.key), e.key, `key of record ${i}`)
    eq(str(m.value), e.value, `value of record ${i}`)
    const hs = {}
    for (const [k, v] of Object.entries(m.headers || {})) hs[k] = Array.isArray(v) ? v.map(str) : str(v)
    eq(hs, e.headers || {}, `headers of record ${i}`)
    check(Number(m.timestamp) > 1.5e12, `timestamp ${m.timestamp}`)
  })
}

const SCENARIOS = {}
const scenario = (name, fn) => { SCENARIOS[name] = fn }

scenario('metadata', async (ctx) => {
  const admin = kafka(ctx).admin()
  await admin.connect()
  try {
    const cluster = await admin.describeCluster()
    eq(cluster.brokers.length, ctx.bootstrap.split(',').length, 'brokers') // every broker listed
    check(cluster.clusterId, 'cluster id')
    check(cluster.controller >= 0, `controller ${cluster.controller}`)
    await produce(ctx, ctx.topic(), {}, RECORDS.slice(0, 1))
    const md = await admin.fetchTopicMetadata({ topics: [ctx.topic()] })
    eq(md.topics[0].partitions.map(p => p.partitionId), [0], 'partitions of an auto-created topic')
  } finally { await admin.disconnect() }
})

scenario('produce', async (ctx) => {
  const res = await produce(ctx, ctx.topic())
  eq(res.map(r => [r.partition, r.errorCode, r.baseOffset]), [[0, 0, '0']], 'produce result')
  const admin = kafka(ctx).admin()
  await admin.connect()
  try {
    const offs = await admin.fetchTopicOffsets(ctx.topic())
    eq(offs.map(o => [o.partition, o.low, o.high]), [[0, '0', '5']], 'low/high offsets')
  } finally { await admin.disconnect() }
})

scenario('produce-consume', async (ctx) => {
  await produce(ctx, ctx.topic())
  checkRecords(await consume(ctx, ctx.topic(), RECORDS.length))
})

for (const [name, type] of [['gzip', CompressionTypes.GZIP], ['snappy', CompressionTypes.Snappy], ['lz4', CompressionTypes.LZ4]]) {
  scenario(`compression-${name}`, async (ctx) => {
    const res = await produce(ctx, ctx.topic(), { compression: type })
    eq(res[0].errorCode, 0, 'produce error code')
    checkRecords(await consume(ctx, ctx.topic(), RECORDS.length))
  })
}
scenario('compression-zstd', async () => { return { skip: 'KafkaJS has no built-in zstd and no pure-JS zstd codec is installed' } })

scenario('idempotent-producer', async (ctx) => {
  const res = await produce(ctx, ctx.topic(), { producer: { idempotent: true, maxInFlightRequests: 1 } })
  eq(res[0].baseOffset, '0', 'base offset')
  const admin = kafka(ctx).admin()
  await admin.connect()
  try {
    eq((await admin.fetchTopicOffsets(ctx.topic()))[0].high, '5', 'high watermark')
  } finally { await admin.disconnect() }
})

scenario('transactions', async (ctx) => {
  const t = ctx.topic()
  const p = kafka(ctx).producer({ transactionalId: `${t}-txn`, idempotent: true, maxInFlightRequests: 1 })
  await p.connect()
  try {
    let tx = await p.transaction()
    await tx.send({ topic: t, messages: [{ value: 'aborted' }] })
    await tx.abort()
    tx = await p.transaction()
    await tx.send({ topic: t, messages: [{ value: 'committed' }] })
    await tx.commit()
  } finally { await p.disconnect() }
  const got = await consume(ctx, t, 1, { consumer: { readUncommitted: false } })
  eq([got[0].offset, str(got[0].value)], ['2', 'committed'], 'committed record')
})

scenario('list-offsets', async (ctx) => {
  const t = ctx.topic()
  const base = Date.now() - 60000
  await produce(ctx, t, {}, [0, 1, 2, 3, 4].map(i => ({ value: `v${i}`, timestamp: String(base + i * 1000) })))
  const admin = kafka(ctx).admin()
  await admin.connect()
  try {
    const offs = await admin.fetchTopicOffsets(t)
    eq([offs[0].low, offs[0].high], ['0', '5'], 'low/high')
    const at = await admin.fetchTopicOffsetsByTimestamp(t, base + 2500)
    eq(at.map(o => [o.partition, o.offset]), [[0, '3']], 'offset by timestamp')
    const future = await admin.fetchTopicOffsetsByTimestamp(t, base + 3600000)
    // KafkaJS maps Kafka's -1 ("no such record") to the high watermark
    eq(future.map(o => [o.partition, o.offset]), [[0, '5']], 'offset by a future timestamp')
  } finally { await admin.disconnect() }
})

scenario('group-commit', async (ctx) => {
  const t = ctx.topic(); const g = `${t}-group`
  await produce(ctx, t)
  await consume(ctx, t, RECORDS.length, {
    groupId: g,
    autoCommit: false,
    after: async (c) => { await c.commitOffsets([{ topic: t, partition: 0, offset: '3' }]) }
  })
  const admin = kafka(ctx).admin()
  await admin.connect()
  try {
    const offs = await admin.fetchOffsets({ groupId: g, topics: [t] })
    eq(offs[0].partitions.map(p => [p.partition, p.offset]), [[0, '3']], 'committed offsets')
    const groups = await admin.listGroups()
    check(groups.groups.some(x => x.groupId === g), 'group not listed')
    const desc = await admin.describeGroups([g])
    eq(desc.groups[0].state, 'Empty', 'group state after the member left')
  } finally { await admin.disconnect() }
})

scenario('admin-topics', async (ctx) => {
  const t = ctx.topic()
  const admin = kafka(ctx).admin()
  await admin.connect()
  try {
    eq(await admin.createTopics({ topics: [{ topic: t, numPartitions: 3, configEntries: [{ name: 'retention.ms', value: '123456' }] }], waitForLeaders: true }), true, 'created')
    eq(await admin.createTopics({ topics: [{ topic: t, numPartitions: 1 }] }), false, 'create of an existing topic')
    check((await admin.listTopics()).includes(t), 'created topic not listed')
    await admin.createPartitions({ topicPartitions: [{ topic: t, count: 4 }] })
    // KRaft Kafka answers CreatePartitions and DeleteTopics before its metadata shows the change
    const pause = () => new Promise(resolve => setTimeout(resolve, 100))
    let md = await admin.fetchTopicMetadata({ topics: [t] })
    for (let i = 0; i < 100 && md.topics[0].partitions.length < 4; i++) {
      await pause()
      md = await admin.fetchTopicMetadata({ topics: [t] })
    }
    eq(md.topics[0].partitions.length, 4, 'partitions after createPartitions')
    await admin.deleteTopics({ topics: [t] })
    for (let i = 0; i < 100 && (await admin.listTopics()).includes(t); i++) await pause()
    check(!(await admin.listTopics()).includes(t), 'deleted topic still listed')
  } finally { await admin.disconnect() }
})

scenario('admin-configs', async (ctx) => {
  const t = ctx.topic()
  const admin = kafka(ctx).admin()
  await admin.connect()
  try {
    await admin.createTopics({ topics: [{ topic: t }] })
    await admin.alterConfigs({ resources: [{ type: 2, name: t, configEntries: [{ name: 'retention.ms', value: '86400000' }] }] })
    // KRaft Kafka answers AlterConfigs before its metadata cache has applied the change
    const describe = () => admin.describeConfigs({ resources: [{ type: 2, name: t, configNames: ['retention.ms', 'cleanup.policy'] }], includeSynonyms: false })
    let res = await describe()
    for (let i = 0; i < 100 && !res.resources[0].configEntries.some(e => e.configName === 'retention.ms' && e.configValue === '86400000'); i++) {
      await new Promise(resolve => setTimeout(resolve, 100))
      res = await describe()
    }
    const entries = Object.fromEntries(res.resources[0].configEntries.map(e => [e.configName, [e.configValue, e.configSource]])
      .sort((x, y) => x[0].localeCompare(y[0])))
    // configSource: 1 DYNAMIC_TOPIC_CONFIG, 5 DEFAULT_CONFIG
    eq(entries, { 'cleanup.policy': ['delete', 5], 'retention.ms': ['86400000', 1] }, 'configs [value, source]')
  } finally { await admin.disconnect() }
})

function emit (obj) { process.stdout.write(JSON.stringify(obj) + '\n') }

async function main () {
  if (args.includes('--list')) { Object.keys(SCENARIOS).forEach(n => console.log(n)); return 0 }
  const bootstrap = opt('--bootstrap'); const prefix = opt('--prefix', 'compat-kafkajs')
  const only = (opt('--only', '') || '').split(',').filter(Boolean)
  let failed = 0
  for (const [name, fn] of Object.entries(SCENARIOS)) {
    if (only.length && !only.includes(name)) continue
    const ctx = { bootstrap, scenario: name, topic: (s = '') => `${prefix}-${name}${s ? '-' + s : ''}` }
    emit({ event: 'start', scenario: name })
    const t0 = Date.now()
    let status = 'pass'; let detail = ''
    let timer
    try {
      const out = await Promise.race([fn(ctx), new Promise((resolve, reject) => {
        timer = setTimeout(() => reject(new Error('scenario timed out after 40s')), 40000)
      })])
      if (out && out.skip) { status = 'skip'; detail = out.skip }
    } catch (e) {
      status = 'fail'; detail = `${e.name}: ${e.message}`; failed++
      process.stderr.write(`--- ${name} failed\n${e.stack}\n`)
    } finally { clearTimeout(timer) }
    emit({ event: 'end', scenario: name, status, detail: detail.slice(0, 2000), seconds: (Date.now() - t0) / 1000 })
  }
  return failed ? 1 : 0
}

main().then(code => process.exit(code), e => { console.error(e); process.exit(2) })
