/**
 * Counters and histograms for the figures counted on every request and transaction, kept in the
 * server's prom-client registry and exposed exactly as prom-client's own would be. prom-client
 * validates and hashes a labels object on every observation, which cost about 6,000 instructions
 * each, several times per get-child-version (callgrind, see docs/performance.md); here the caller
 * picks a series once per request by its label values, and counting it is an increment.
 */
import type { Metric, Registry } from 'prom-client';

type Labels = Record<string, string | number>;

/** One sample, as prom-client's metrics give theirs from get(). */
export interface SampleValue {
  readonly metricName?: string;
  readonly labels: Labels;
  readonly value: number;
}

/** What get() gives, as prom-client's metrics do. */
export interface FamilyValues {
  readonly name: string;
  readonly help: string;
  readonly type: 'counter' | 'histogram';
  readonly aggregator: 'sum';
  readonly values: readonly SampleValue[];
}

interface FamilyConfig {
  /** The metric's name and help text, as prom-client's configurations have them. */
  readonly name: string;
  readonly help: string;
  /** The label names, in the order `series()` takes their values. @default none */
  readonly labelNames?: readonly string[];
  /** Registered here (the family registers itself); none leaves that to the caller. */
  readonly registers?: readonly Registry[];
}

interface SeriesEntry<S> {
  readonly labels: Labels;
  readonly series: S;
}

interface SeriesTree<S> {
  readonly children: Map<string, SeriesTree<S>>;
  entry: SeriesEntry<S> | null;
}

/** What both kinds share: series by label values, and the shape a prom-client registry reads. */
abstract class Family<S> {
  readonly name: string;
  readonly help: string;
  abstract readonly type: 'counter' | 'histogram';
  /** How a cluster of processes would merge it (prom-client's AggregatorRegistry). */
  readonly aggregator = 'sum' as const;
  readonly #labelNames: readonly string[];
  #root: SeriesTree<S> = { children: new Map(), entry: null };
  /** Every series, in the order they were made (the exposition's order). */
  #entries: SeriesEntry<S>[] = [];

  constructor(config: FamilyConfig) {
    this.name = config.name;
    this.help = config.help;
    this.#labelNames = config.labelNames ?? [];
    for (const registry of config.registers ?? []) registry.registerMetric(this.asMetric());
  }

  /** The series of these label values (in labelNames' order), created on first use. */
  series(...values: string[]): S {
    // A tree of maps, one level per label: a lookup hashes each value (mostly interned
    // strings whose hash is kept) instead of building and hashing a key of them all.
    let node: SeriesTree<S> = this.#root;
    for (const value of values) {
      let next = node.children.get(value);
      if (next === undefined) {
        next = { children: new Map(), entry: null };
        node.children.set(value, next);
      }
      node = next;
    }
    if (node.entry === null) {
      if (values.length !== this.#labelNames.length) throw new TypeError(`${this.name} takes ${this.#labelNames.length} label values, got ${values.length}`);
      const labels: Labels = {};
      this.#labelNames.forEach((name, i) => (labels[name] = values[i] as string));
      node.entry = { labels, series: this.newSeries() };
      this.#entries.push(node.entry);
    }
    return node.entry.series;
  }

  /** Read by a prom-client registry; the values are as prom-client's own metric of this type gives them. */
  async get(): Promise<FamilyValues> {
    // Without labels there is one series, shown from the start as prom-client shows it.
    if (this.#labelNames.length === 0) this.series();
    const values = this.#entries.flatMap(({ labels, series }) => this.valuesOf(labels, series));
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** Forgets every series, as prom-client's reset() does: pick a series again after it, never keep one. */
  reset(): void {
    this.#root = { children: new Map(), entry: null };
    this.#entries = [];
  }

  /**
   * This family as the registry takes it. A registry reads only name, help, type, aggregator,
   * get() and reset(), which a family has; prom-client's type for it names its own classes.
   */
  asMetric(): Metric {
    return this as unknown as Metric;
  }

  protected abstract newSeries(): S;
  protected abstract valuesOf(labels: Labels, series: S): SampleValue[];
}

export interface CounterSeries {
  inc(amount?: number): void;
}

export class CounterFamily extends Family<CounterSeries> {
  readonly type = 'counter';

  protected newSeries(): CounterSeries & { value: number } {
    return {
      value: 0,
      inc(amount = 1) {
        this.value += amount;
      },
    };
  }

  protected valuesOf(labels: Labels, series: CounterSeries & { value: number }): SampleValue[] {
    return [{ labels, value: series.value }];
  }
}

export interface HistogramSeries {
  observe(value: number): void;
}

interface HistogramState extends HistogramSeries {
  /** Observations per bucket, not cumulative; the last one is past every bound (+Inf). */
  readonly counts: number[];
  sum: number;
  count: number;
}

export class HistogramFamily extends Family<HistogramSeries> {
  readonly type = 'histogram';
  readonly #bounds: readonly number[];

  constructor(config: FamilyConfig & { readonly buckets: readonly number[] }) {
    super(config);
    this.#bounds = [...config.buckets].sort((a, b) => a - b);
  }

  protected newSeries(): HistogramState {
    const bounds = this.#bounds;
    return {
      counts: new Array<number>(bounds.length + 1).fill(0),
      sum: 0,
      count: 0,
      observe(value) {
        if (!Number.isFinite(value)) throw new TypeError(`Value is not a valid number: ${value}`);
        let i = 0;
        while (i < bounds.length && value > (bounds[i] as number)) i++;
        (this.counts[i] as number)++;
        this.sum += value;
        this.count++;
      },
    };
  }

  protected valuesOf(labels: Labels, series: HistogramState): SampleValue[] {
    let cumulative = 0;
    const buckets = this.#bounds.map((le, i) => {
      cumulative += series.counts[i] as number;
      return { metricName: `${this.name}_bucket`, labels: { le, ...labels }, value: cumulative };
    });
    return [
      ...buckets,
      { metricName: `${this.name}_bucket`, labels: { le: '+Inf', ...labels }, value: series.count },
      { metricName: `${this.name}_sum`, labels, value: series.sum },
      { metricName: `${this.name}_count`, labels, value: series.count },
    ];
  }
}
