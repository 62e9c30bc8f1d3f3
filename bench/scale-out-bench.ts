/**
 * (g) Scale-out: four `tcsync serve --connection` processes on one PostgreSQL database with 64
 * clients, 16 on each, against one process with all 64; each client adds 1 KiB versions in
 * sequence on its own keep-alive connection, as a Taskwarrior replica does. The two sides take
 * turns round by round on the same empty database (bench-postgres.ts), and each side's CPU is
 * measured over its turns: the serve processes', the database's (its backends and background
 * processes, when it runs on this machine), the load client's (this process) and the machine's
 * idle, as shares of its cores.
 */
import os from 'node:os';
import { benchDatabase, type BenchDatabase } from './bench-postgres.js';
import { Replica, addInParallel, inTurn, scaled, startTcsync, stop, type Server } from './bench-servers.js';
import { PostgresCpu, machineCpu, processesCpu } from './proc-cpu.js';
import { fmt, median, type BenchSection } from './report.js';

const TITLE = '(g) scale-out: serve processes on one PostgreSQL database, 64 clients each adding in sequence';
const CLIENTS = 64;
const PROCESSES = 4;
const ROUNDS = 3;
/** Add-versions per client per turn. */
const PER_TURN = scaled(40);
/** Add-versions per client before the first turn: creates the clients and fills the pools. */
const WARM_UP = 10;

interface Side {
  readonly name: string;
  readonly servers: readonly Server[];
  readonly replicas: readonly Replica[];
  readonly rates: number[];
  readonly latencies: number[];
  /** CPU seconds over the side's turns, and the turns' wall-clock seconds. */
  readonly cpu: { wall: number; tcsync: number; postgres: number; load: number; machineTotal: number; machineIdle: number };
}

function side(name: string, servers: readonly Server[]): Side {
  return {
    name,
    servers,
    replicas: Array.from({ length: CLIENTS }, (_, i) => new Replica((servers[i % servers.length] as Server).url)),
    rates: [],
    latencies: [],
    cpu: { wall: 0, tcsync: 0, postgres: 0, load: 0, machineTotal: 0, machineIdle: 0 },
  };
}

/** One turn of a side: every client adds PER_TURN versions; its CPU is added to the side's. */
async function turn(s: Side, postgres: PostgresCpu | null): Promise<void> {
  const pids = s.servers.map((server) => server.child.pid as number);
  const before = { pg: postgres?.sample(), tcsync: processesCpu(pids), load: process.cpuUsage(), machine: machineCpu(), at: performance.now() };
  const { rate, latencies } = await addInParallel(s.replicas, PER_TURN);
  const wall = (performance.now() - before.at) / 1000;
  const machine = machineCpu();
  const load = process.cpuUsage(before.load);
  s.cpu.wall += wall;
  s.cpu.tcsync += processesCpu(pids) - before.tcsync;
  s.cpu.postgres += postgres === null || before.pg === undefined ? NaN : PostgresCpu.spent(before.pg, postgres.sample());
  s.cpu.load += (load.user + load.system) / 1e6;
  s.cpu.machineTotal += machine.total - before.machine.total;
  s.cpu.machineIdle += machine.idle - before.machine.idle;
  s.rates.push(rate);
  s.latencies.push(...latencies);
}

/** The database's CPU is measured only where its postmaster is a process on this machine. */
function postgresCpuOf(database: BenchDatabase): Promise<PostgresCpu | null> {
  return database.connected(async (client) => {
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    return PostgresCpu.of(Number(rows[0]?.pid), database.name);
  });
}

export async function bench(): Promise<BenchSection> {
  const database = await benchDatabase();
  if ('skipped' in database) return { title: TITLE, rows: [['(g) scale-out', 'skipped', database.skipped]] };
  const servers: Server[] = [];
  const sides: Side[] = [];
  let postgres: PostgresCpu | null = null;
  try {
    for (let i = 0; i < PROCESSES + 1; i++) servers.push(await startTcsync(`serve ${i + 1}`, ['--connection', database.uri]));
    sides.push(side(`${PROCESSES} serve processes, ${CLIENTS} clients (${CLIENTS / PROCESSES} on each)`, servers.slice(0, PROCESSES)));
    sides.push(side(`1 serve process, ${CLIENTS} clients`, servers.slice(PROCESSES)));
    for (const s of sides) await addInParallel(s.replicas, WARM_UP);
    postgres = await postgresCpuOf(database);
    for (let round = 0; round < ROUNDS; round++) {
      for (const s of inTurn(round, sides)) await turn(s, postgres);
    }
  } finally {
    for (const replica of sides.flatMap((s) => s.replicas)) await replica.close();
    for (const server of servers) await stop(server);
    await database.drop();
  }

  const cores = os.availableParallelism();
  const [many, one] = sides as [Side, Side];
  const row = (s: Side): readonly [string, string, string] => {
    const share = (seconds: number) => fmt.pct(seconds / (s.cpu.wall * cores));
    const commits = s.replicas.length * PER_TURN * ROUNDS;
    const perCommit = (seconds: number) => `${((seconds / commits) * 1e6).toFixed(0)} µs`;
    return [
      `(g) ${s.name}`,
      `${fmt.perSec(median(s.rates))} commits, p50 ${fmt.ms(median(s.latencies))}`,
      `CPU as a share of ${cores} cores: tcsync ${share(s.cpu.tcsync)}, PostgreSQL ${postgres === null ? 'not on this machine' : share(s.cpu.postgres)}, ` +
        `load client ${share(s.cpu.load)}; machine idle ${fmt.pct(s.cpu.machineIdle / s.cpu.machineTotal)}; ` +
        `CPU per commit: tcsync ${perCommit(s.cpu.tcsync)}, PostgreSQL ${postgres === null ? '-' : perCommit(s.cpu.postgres)}`,
    ];
  };
  return {
    title: TITLE,
    rows: [
      row(many),
      row(one),
      [
        `(g) ${PROCESSES} processes / 1`,
        fmt.ratio(median(many.rates) / median(one.rates)),
        `each serve has its pool of 10 connections (${PROCESSES * 10} vs 10); ${ROUNDS} turns of ${PER_TURN} add-versions per client, sides alternating; PostgreSQL = postmaster, background processes and this database's backends`,
      ],
    ],
  };
}
