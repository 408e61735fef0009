// IAM evaluation for certfleet's tests: one JSON simulation per stdin line, one JSON answer per stdout line.
// Uses @cloud-copilot/iam-simulate (AGPL-3.0): a development/test tool, never shipped in the wheel or an asset.
import { createInterface } from 'node:readline'
import { runSimulation } from '@cloud-copilot/iam-simulate'

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity })
for await (const line of lines) {
  let answer
  try {
    const { id, simulation } = JSON.parse(line)
    const response = await runSimulation(simulation, {})
    answer = response.resultType === 'error'
      ? { id, error: JSON.stringify(response.errors) }
      : { id, result: response.overallResult, ignored: response.result?.ignoredContextKeys ?? [] }
  } catch (err) {
    answer = { id: null, error: String(err && err.stack ? err.stack : err) }
  }
  process.stdout.write(JSON.stringify(answer) + '\n')
}
