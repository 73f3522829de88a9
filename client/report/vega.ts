/**
 * The timeline picture: a Vega specification of the report's timeline, rendered headlessly
 * to SVG. One lane per node (a band on the y axis), partitions as bars over UTC time (or
 * time bins shaded by how many partitions ran), paused spans across every lane, throttled
 * spans at the top of their lane; and under it the rate over time on the same time axis. Marks
 * are named, so the SVG has classes to find them by.
 */
import * as vega from 'vega';
import type { Timeline } from './model.ts';

export const COLORS = { published: '#4c78a8', failed_check: '#e45756', paused: '#9e9e9e', throttled: '#f58518', limit: '#8250df', lane: '#f4f6f8' } as const;
const LANE_HEIGHT = 44;
const WIDTH = 960;

/** Axis labels: clock times for a run within a day, dates and times beyond. */
function timeFormat(spanMs: number): string {
  if (spanMs <= 5 * 60_000) return '%H:%M:%S';
  return spanMs <= 86_400_000 ? '%H:%M' : '%b %d %H:%M';
}

// Marks of zero length (a partition that took no time, a single throttle) stay visible.
const x2 = (min: number) => ({ signal: `max(scale('time', datum.endMs), scale('time', datum.startMs) + ${min})` });

/** The paused spans, across the whole height (data `paused_spans`). */
function pausedMark(name: string): vega.Mark {
  return {
    type: 'rect',
    name,
    from: { data: 'paused_spans' },
    encode: {
      enter: {
        x: { scale: 'time', field: 'startMs' },
        x2: x2(2),
        y: { value: 0 },
        y2: { signal: 'height' },
        fill: { value: COLORS.paused },
        fillOpacity: { value: 0.35 },
        stroke: { value: COLORS.paused },
        description: { value: 'paused' },
      },
    },
  };
}

/** The limit changes as dashed rules from `top` down the whole height (data `limit_changes`). */
function limitRules(name: string, top: number): vega.Mark {
  return {
    type: 'rule',
    name,
    from: { data: 'limit_changes' },
    encode: {
      enter: {
        x: { scale: 'time', field: 'atMs' },
        y: { value: top },
        y2: { signal: 'height' },
        stroke: { value: COLORS.limit },
        strokeWidth: { value: 1.5 },
        strokeDash: { value: [4, 3] },
        description: { signal: "'limit change #' + datum.seq + ': ' + datum.label" },
      },
    },
  };
}

export function timelineSpec(timeline: Timeline): vega.Spec {
  const lanes = timeline.lanes.map((l, i) => ({ ...l, shade: i % 2 }));
  const partitions = timeline.detail === 'partitions';
  const limits = timeline.limitChanges.length > 0;
  const slots = new Map(lanes.map((l) => [l.node, l.slots]));
  return {
    $schema: 'https://vega.github.io/schema/vega/v6.json',
    description: `Timeline of ${lanes.length} nodes`,
    width: WIDTH,
    height: LANE_HEIGHT * Math.max(1, lanes.length),
    padding: 8,
    background: 'white',
    data: [
      { name: 'lane_rows', values: lanes },
      { name: 'partition_rows', values: timeline.marks.map((m) => ({ ...m, slots: slots.get(m.node) ?? 1 })) },
      { name: 'bin_rows', values: timeline.bins },
      { name: 'paused_spans', values: timeline.paused },
      { name: 'throttled_spans', values: timeline.throttled },
      { name: 'limit_changes', values: timeline.limitChanges.map((c) => ({ ...c, text: `#${c.seq} ${c.label.length > 32 ? `${c.label.slice(0, 31)}…` : c.label}` })) },
    ],
    scales: [
      { name: 'time', type: 'utc', domain: [timeline.startMs, Math.max(timeline.endMs, timeline.startMs + 1)], range: 'width' },
      { name: 'lane', type: 'band', domain: lanes.map((l) => l.node), range: 'height', paddingInner: 0.15, paddingOuter: 0.08 },
      { name: 'busy', type: 'linear', domain: { data: 'bin_rows', field: 'busy' }, range: ['#c6dbef', '#08306b'], zero: true },
      {
        name: 'legend',
        type: 'ordinal',
        domain: [...(partitions ? ['published', 'failed check'] : []), 'paused', 'throttled', ...(limits ? ['limit change'] : [])],
        range: [...(partitions ? [COLORS.published, COLORS.failed_check] : []), COLORS.paused, COLORS.throttled, ...(limits ? [COLORS.limit] : [])],
      },
    ],
    axes: [
      { orient: 'bottom', scale: 'time', grid: true, gridOpacity: 0.25, labelOverlap: true, formatType: 'utc', format: timeFormat(timeline.endMs - timeline.startMs), title: 'UTC' },
      { orient: 'left', scale: 'lane', labelFontSize: 12, labelLimit: 400, ticks: false, domain: false },
    ],
    legends: [
      // Above the limit changes' labels, when there are any.
      { fill: 'legend', orient: 'top', direction: 'horizontal', symbolType: 'square', offset: limits ? 34 : 18 },
      ...(partitions ? [] : [{ fill: 'busy', type: 'gradient' as const, orient: 'top' as const, direction: 'horizontal' as const, title: 'partitions running (average)', titleLimit: 400, titleFontWeight: 'normal' as const }]),
    ],
    marks: [
      {
        type: 'rect',
        name: 'lanes',
        from: { data: 'lane_rows' },
        encode: {
          enter: {
            x: { value: 0 },
            x2: { signal: 'width' },
            y: { scale: 'lane', field: 'node' },
            height: { scale: 'lane', band: 1 },
            fill: { signal: `datum.shade ? '#ffffff' : '${COLORS.lane}'` },
            description: { signal: "'lane ' + datum.node" },
          },
        },
      },
      partitions
        ? {
            type: 'rect',
            name: 'partitions',
            from: { data: 'partition_rows' },
            encode: {
              enter: {
                x: { scale: 'time', field: 'startMs' },
                x2: x2(1),
                y: { signal: "scale('lane', datum.node) + datum.slot * bandwidth('lane') / datum.slots" },
                height: { signal: "max(1, bandwidth('lane') / datum.slots - 1)" },
                fill: { signal: `datum.status === 'published' ? '${COLORS.published}' : '${COLORS.failed_check}'` },
                description: { signal: "datum.node + ' ' + datum.partition + ' (' + datum.status + ')'" },
              },
            },
          }
        : {
            type: 'rect',
            name: 'bins',
            from: { data: 'bin_rows' },
            encode: {
              enter: {
                x: { scale: 'time', field: 'startMs' },
                x2: x2(1),
                y: { scale: 'lane', field: 'node' },
                height: { scale: 'lane', band: 1 },
                fill: { scale: 'busy', field: 'busy' },
                description: { signal: "datum.node + ': ' + datum.busy + ' running on average, ' + datum.finished + ' finished'" },
              },
            },
          },
      {
        type: 'rect',
        name: 'throttled',
        from: { data: 'throttled_spans' },
        encode: {
          enter: {
            x: { scale: 'time', field: 'startMs' },
            x2: x2(3),
            y: { scale: 'lane', field: 'node' },
            height: { value: 5 },
            fill: { value: COLORS.throttled },
            description: { signal: "datum.node + ' throttled ' + datum.count + ' time(s), pace reduced ' + (datum.recovered ? 'until back' : 'to its last report')" },
          },
        },
      },
      pausedMark('paused'),
      {
        type: 'text',
        name: 'paused-labels',
        from: { data: 'paused_spans' },
        encode: {
          enter: {
            x: { scale: 'time', field: 'startMs' },
            dx: { value: 3 },
            y: { value: -2 },
            text: { value: 'paused' },
            fontSize: { value: 10 },
            fill: { value: '#555555' },
            baseline: { value: 'bottom' },
          },
        },
      },
      limitRules('limit-changes', -26),
      {
        type: 'text',
        name: 'limit-change-labels',
        from: { data: 'limit_changes' },
        encode: {
          enter: {
            x: { scale: 'time', field: 'atMs' },
            dx: { value: 3 },
            y: { value: -26 },
            text: { field: 'text' },
            fontSize: { value: 10 },
            fill: { value: COLORS.limit },
            baseline: { value: 'top' },
          },
        },
      },
    ],
  };
}

const RATE_HEIGHT = 110;

/**
 * The rate over time under the timeline, on the same time axis: partitions finished per second
 * (a step per time bin), the paused spans, and the limit changes as the same dashed rules.
 */
export function rateSpec(timeline: Timeline): vega.Spec {
  return {
    $schema: 'https://vega.github.io/schema/vega/v6.json',
    description: 'Partitions finished per second',
    width: WIDTH,
    height: RATE_HEIGHT,
    padding: 8,
    background: 'white',
    data: [
      // The step's last point, so the last bin has a width too.
      { name: 'rate_rows', values: [...timeline.rate.map((r) => ({ atMs: r.startMs, perSecond: r.perSecond })), ...timeline.rate.slice(-1).map((r) => ({ atMs: r.endMs, perSecond: r.perSecond }))] },
      { name: 'paused_spans', values: timeline.paused },
      { name: 'limit_changes', values: timeline.limitChanges },
    ],
    scales: [
      { name: 'time', type: 'utc', domain: [timeline.startMs, Math.max(timeline.endMs, timeline.startMs + 1)], range: 'width' },
      { name: 'rate', type: 'linear', domain: { data: 'rate_rows', field: 'perSecond' }, range: 'height', zero: true, nice: true },
    ],
    axes: [
      { orient: 'bottom', scale: 'time', grid: true, gridOpacity: 0.25, labelOverlap: true, formatType: 'utc', format: timeFormat(timeline.endMs - timeline.startMs), title: 'UTC' },
      { orient: 'left', scale: 'rate', grid: true, gridOpacity: 0.25, tickCount: 4, title: 'partitions/s' },
    ],
    marks: [
      pausedMark('rate-paused'),
      {
        type: 'area',
        name: 'rate',
        from: { data: 'rate_rows' },
        encode: {
          enter: {
            x: { scale: 'time', field: 'atMs' },
            y: { scale: 'rate', field: 'perSecond' },
            y2: { scale: 'rate', value: 0 },
            interpolate: { value: 'step-after' },
            fill: { value: COLORS.published },
            fillOpacity: { value: 0.25 },
            stroke: { value: COLORS.published },
            strokeWidth: { value: 1.5 },
            description: { value: 'partitions finished per second' },
          },
        },
      },
      limitRules('rate-limit-changes', 0),
    ],
  };
}

/** A Vega specification rendered to an SVG document (a string), without a browser. */
async function toSvgText(spec: vega.Spec): Promise<string> {
  const view = new vega.View(vega.parse(spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** The timeline as an SVG document (a string), rendered without a browser. */
export function timelineSvg(timeline: Timeline): Promise<string> {
  return toSvgText(timelineSpec(timeline));
}

/** The rate over time as an SVG document. */
export function rateSvg(timeline: Timeline): Promise<string> {
  return toSvgText(rateSpec(timeline));
}
