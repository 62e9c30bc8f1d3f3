/**
 * The request path's counters and histograms must read, on /metrics, exactly as prom-client's own
 * would for the same observations: dashboards and alerts written for them keep working.
 */
import { Counter, Histogram, Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { CounterFamily, HistogramFamily } from '../../src/http/metric-series.js';

const BUCKETS = [0.001, 0.01, 0.1, 1];

/** The same figures, observed through prom-client and through a family, as exposition text. */
async function bothExpositions(observe: (record: (labels: Record<string, string>, value: number) => void) => void) {
  const theirs = new Registry();
  const ours = new Registry();
  const labelNames = ['method', 'route'];
  const promCounter = new Counter({ name: 'c_total', help: 'a counter', labelNames, registers: [theirs] });
  const promHistogram = new Histogram({ name: 'h_seconds', help: 'a histogram', labelNames, buckets: BUCKETS, registers: [theirs] });
  const promPlain = new Histogram({ name: 'plain_seconds', help: 'no labels', buckets: BUCKETS, registers: [theirs] });
  const counter = new CounterFamily({ name: 'c_total', help: 'a counter', labelNames, registers: [ours] });
  const histogram = new HistogramFamily({ name: 'h_seconds', help: 'a histogram', labelNames, buckets: BUCKETS, registers: [ours] });
  const plain = new HistogramFamily({ name: 'plain_seconds', help: 'no labels', buckets: BUCKETS, registers: [ours] });
  observe((labels, value) => {
    promCounter.inc(labels);
    promHistogram.observe(labels, value);
    promPlain.observe(value);
    counter.series(labels.method as string, labels.route as string).inc();
    histogram.series(labels.method as string, labels.route as string).observe(value);
    plain.series().observe(value);
  });
  return { theirs: await theirs.metrics(), ours: await ours.metrics(), families: { counter, histogram, plain } };
}

describe('metric families', () => {
  it('expose what prom-client exposes for the same observations, bucket bounds and label order included', async () => {
    const { theirs, ours } = await bothExpositions((record) => {
      record({ method: 'GET', route: '/a/{id}' }, 0.0004);
      record({ method: 'GET', route: '/a/{id}' }, 0.01); // on a bound: counted in it (le)
      record({ method: 'POST', route: '/b' }, 0.5);
      record({ method: 'GET', route: '/a/{id}' }, 7); // past every bound: +Inf only
      record({ method: 'POST', route: 'quote "and" back\\slash\nnewline' }, 0.05);
    });
    expect(ours).toBe(theirs);
  });

  it('show an unlabelled histogram with no observations as prom-client does, and nothing for labelled ones', async () => {
    const { theirs, ours } = await bothExpositions(() => undefined);
    expect(ours).toBe(theirs);
    expect(ours).toContain('plain_seconds_count 0');
  });

  it('give one series per label values, and forget them all on reset', async () => {
    const { families } = await bothExpositions((record) => record({ method: 'GET', route: '/a' }, 1));
    expect(families.counter.series('GET', '/a')).toBe(families.counter.series('GET', '/a'));
    expect(families.counter.series('GET', '/a')).not.toBe(families.counter.series('GET', '/b'));
    families.counter.reset();
    expect((await families.counter.get()).values).toEqual([]);
  });

  it('count again after a registry reset, in a series picked again', async () => {
    const registry = new Registry();
    const plain = new HistogramFamily({ name: 'plain_seconds', help: 'no labels', buckets: BUCKETS, registers: [registry] });
    plain.series().observe(0.5);
    registry.resetMetrics();
    plain.series().observe(0.05);
    expect(await registry.metrics()).toContain('plain_seconds_count 1');
    expect(await registry.metrics()).toContain('plain_seconds_sum 0.05');
  });

  it('refuse what is not a finite number, as prom-client does', () => {
    const plain = new HistogramFamily({ name: 'p_seconds', help: 'p', buckets: BUCKETS });
    expect(() => plain.series().observe(Number.NaN)).toThrow(TypeError);
    expect(() => plain.series().observe(Number.POSITIVE_INFINITY)).toThrow(TypeError);
  });

  it('refuse a series with the wrong number of label values', () => {
    const counter = new CounterFamily({ name: 'x_total', help: 'x', labelNames: ['a', 'b'] });
    expect(() => counter.series('only one')).toThrow(TypeError);
  });
});
