// Index NDJSON events with the bulk helper of the official Elasticsearch
// JavaScript client and print the helper's counts as one JSON object:
// {"total": N, "successful": N, "failed": N, "drops": [...]}.
//
// Usage: node bulk.mjs URL INDEX EVENTS_FILE
//
// Exits 1 when the server rejected any document (the helper retries only
// items with status 429 before it drops them) or when a bulk request failed
// as a whole, and 2 on missing arguments.

import { createReadStream } from 'node:fs'
import { createInterface } from 'node:readline'

import { Client } from '@elastic/elasticsearch'

const [url, index, eventsFile] = process.argv.slice(2)
if (!url || !index || !eventsFile) {
  console.error('usage: node bulk.mjs URL INDEX EVENTS_FILE')
  process.exit(2)
}

// Yield each non-empty line as a string: the helper sends a string payload
// as it is, so every document reaches the server byte for byte.
async function * readLines (path) {
  const lines = createInterface({ input: createReadStream(path), crlfDelay: Infinity })
  for await (const line of lines) {
    if (line.trim() !== '') {
      yield line
    }
  }
}

const client = new Client({ node: url })
const drops = []
let stats
try {
  stats = await client.helpers.bulk({
    datasource: readLines(eventsFile),
    onDocument: () => ({ index: { _index: index } }),
    onDrop: drop => drops.push({ status: drop.status, error: drop.error })
  })
} catch (error) {
  const status = error.meta?.statusCode
  console.error(`bulk request to ${url} failed: ${error.name}: ${error.message}` +
    (status === undefined ? '' : ` (HTTP status ${status})`))
  process.exitCode = 1
} finally {
  await client.close()
}

if (stats !== undefined) {
  console.log(JSON.stringify({
    total: stats.total,
    successful: stats.successful,
    failed: stats.failed,
    drops
  }))
  process.exitCode = drops.length > 0 || stats.failed > 0 ? 1 : 0
}
