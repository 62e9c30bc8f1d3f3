/** A replica that keeps adding versions against whatever else writes the same client. */
import { setTimeout } from 'node:timers/promises';
import { expect } from 'vitest';
import { NIL, type ProtocolClient } from './protocol-client.js';

export interface RacingWriterOptions {
  /**
   * Answers (besides 200 and 409) after which the writer tries again instead of failing, such as
   * 503 while the database restarts. Each one is counted in `seen`. @default none
   */
  readonly retryOn?: readonly number[];
  /** How long to pause before trying again after such an answer. @default 50 */
  readonly retryDelayMs?: number;
  /** Every status the writer was answered with, counted. */
  readonly seen?: Map<number, number>;
  /** Receives each acknowledged id as it comes, so the caller keeps them when the writer fails. */
  readonly acked?: string[];
}

/**
 * Adds `count` versions, each on the latest it knows of, learning the latest from every 409;
 * returns the acknowledged ids in order. Any other answer fails it, with what came.
 */
export async function racingWriter(client: ProtocolClient, name: string, count: number, options: RacingWriterOptions = {}): Promise<string[]> {
  const acked = options.acked ?? [];
  let parent = NIL;
  for (let attempt = 0; acked.length < count; attempt++) {
    if (attempt > count * 50) throw new Error(`${name} made no progress`);
    const answer = await client.addVersion(parent, `${name} #${acked.length}`);
    options.seen?.set(answer.status, (options.seen.get(answer.status) ?? 0) + 1);
    if (answer.status === 409) {
      parent = answer.headers['x-parent-version-id'] as string;
      continue;
    }
    if (options.retryOn?.includes(answer.status)) {
      await setTimeout(options.retryDelayMs ?? 50);
      continue;
    }
    if (answer.status !== 200) throw new Error(`${name}: add-version answered ${answer.status} ${answer.text}`);
    parent = answer.headers['x-version-id'] as string;
    acked.push(parent);
  }
  return acked;
}

/**
 * `chain` (a walk from nil) is one linear chain of distinct versions that holds every
 * acknowledged id, each writer's in the order it added them.
 */
export function expectChainHolds(chain: readonly string[], acks: readonly (readonly string[])[]): void {
  expect(new Set(chain).size).toBe(chain.length);
  const position = new Map(chain.map((id, i) => [id, i]));
  for (const acked of acks) {
    const positions = acked.map((id) => position.get(id) ?? -1);
    expect(positions).not.toContain(-1);
    expect([...positions].sort((a, b) => a - b)).toEqual(positions);
  }
}
