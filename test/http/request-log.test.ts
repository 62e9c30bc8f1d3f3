/**
 * Request lines are written by hand for speed; they must stay the lines pino itself writes for
 * `logger.info(fields, msg)`, byte for byte, whatever the logger's bindings and level.
 */
import { pino, type Logger } from 'pino';
import { describe, expect, it, vi } from 'vitest';
import { requestLineWriter, type RequestLine } from '../../src/http/request-log.js';

/** A logger whose lines are collected, with a fixed time so that two lines can be compared. */
function collecting(level: pino.LevelWithSilent = 'info'): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  const logger = pino({ level, timestamp: () => ',"time":1796281316094' }, { write: (s: string) => void lines.push(s) });
  return { logger, lines };
}

const LINES: RequestLine[] = [
  { method: 'GET', route: '/v1/client/get-child-version/{parentVersionId}', status: 200, ms: 0.3, addr: '127.0.0.1', client: 'abcdef12' },
  { method: 'POST', route: '/v1/client/add-snapshot/{versionId}', status: 200, ms: 12, addr: '::1', client: '0123abcd', note: 'snapshot ignored: "too-old" \\ é\n' },
  { method: 'PUT', route: '(unmatched)', status: 0, ms: 1234.5, addr: null },
];

describe('request lines', () => {
  it.each(LINES)('are what pino writes for the same fields: %o', (line) => {
    const theirs = collecting();
    const ours = collecting();
    theirs.logger.info(line, 'request');
    requestLineWriter(ours.logger)(line, 'request');
    expect(ours.lines).toEqual(theirs.lines);
    expect(JSON.parse(ours.lines[0] as string)).toMatchObject({ level: 30, msg: 'request', ...line });
  });

  it('stay what pino writes when their strings come again, and past the strings a writer remembers', () => {
    const theirs = collecting();
    const ours = collecting();
    const write = requestLineWriter(ours.logger);
    // Distinct addresses past the writer's memory, each line twice, the messages alternating.
    for (let i = 0; i < 300; i++) {
      const line: RequestLine = { ...(LINES[i % LINES.length] as RequestLine), addr: `10.0.${i >> 8}.${i & 255}` };
      const msg = i % 2 === 0 ? 'request' : 'client went away before the answer was sent';
      for (let twice = 0; twice < 2; twice++) {
        theirs.logger.info(line, msg);
        write(line, msg);
      }
    }
    expect(ours.lines).toEqual(theirs.lines);
  });

  it("carry a child logger's bindings", () => {
    const theirs = collecting();
    const ours = collecting();
    theirs.logger.child({ component: 'http' }).info(LINES[0], 'client went away before the answer was sent');
    requestLineWriter(ours.logger.child({ component: 'http' }))(LINES[0] as RequestLine, 'client went away before the answer was sent');
    expect(ours.lines).toEqual(theirs.lines);
  });

  it('follow the logger level, also when it changes later (as after a failed write)', () => {
    const { logger, lines } = collecting('warn');
    const write = requestLineWriter(logger);
    write(LINES[0] as RequestLine, 'request');
    expect(lines).toEqual([]);
    logger.level = 'info';
    write(LINES[0] as RequestLine, 'request');
    logger.level = 'silent';
    write(LINES[0] as RequestLine, 'request');
    expect(lines).toHaveLength(1);
  });

  it("write a plain logger's lines themselves, and leave a logger that changes its lines to pino", () => {
    const plain = collecting();
    const info = vi.spyOn(plain.logger, 'info');
    requestLineWriter(plain.logger)(LINES[1] as RequestLine, 'request');
    expect(info).not.toHaveBeenCalled();
    expect(plain.lines).toHaveLength(1);

    const changing: Array<(lines: string[]) => Logger> = [
      (lines) => pino({ mixin: () => ({ extra: 1 }) }, { write: (s: string) => void lines.push(s) }),
      (lines) => pino({ formatters: { log: (o) => ({ ...o, formatted: true }) } }, { write: (s: string) => void lines.push(s) }),
      (lines) => pino({ redact: ['addr'] }, { write: (s: string) => void lines.push(s) }),
      (lines) => pino({ messageKey: 'message' }, { write: (s: string) => void lines.push(s) }),
      (lines) => pino({ serializers: { route: () => 'hidden' } }, { write: (s: string) => void lines.push(s) }),
      (lines) => pino({}, { write: (s: string) => void lines.push(s) }).child({}, { msgPrefix: '[http] ' }),
    ];
    for (const make of changing) {
      const lines: string[] = [];
      const logger = make(lines);
      requestLineWriter(logger)(LINES[1] as RequestLine, 'request');
      const theirs: string[] = [];
      const reference = make(theirs);
      reference.info(LINES[1], 'request');
      const withoutTime = (l: string) => l.replace(/"time":\d+/, '');
      expect(lines.map(withoutTime)).toEqual(theirs.map(withoutTime));
    }
  });
});
