/**
 * The timeline of a backfill as marks: one lane per node, each partition's attempt from its
 * start to its finish (sub-rows keep overlapping partitions apart), or, past a few thousand
 * partitions, time bins with how many partitions ran on average and how many finished.
 */
import type { Span, Timeline, TimelineBin, TimelineLimitChange, TimelineMark, TimelineRate } from './model.ts';

/** Above this many partitions, the timeline shows bins instead of one mark per partition. */
export const MAX_MARKS = 3000;
/** Time bins across the whole timeline, when it shows bins. */
export const BINS = 240;
/** Sub-rows of a lane at most; partitions beyond share them. */
export const MAX_SLOTS = 12;
/** Time bins of the rate over time, at most; each is a second or longer. */
export const RATE_BINS = 120;

export type TimelineRow = { node: string; partition: string; status: 'published' | 'failed_check'; startMs: number; endMs: number };

export type TimelineInput = Span & {
  nodes: readonly string[];
  rows: readonly TimelineRow[];
  paused: Span[];
  throttled: Timeline['throttled'];
  limitChanges?: TimelineLimitChange[];
  maxMarks?: number;
  bins?: number;
};

/** Sub-rows for one lane's marks: each mark takes the first sub-row free at its start. */
function assignSlots(rows: readonly TimelineRow[]): { marks: TimelineMark[]; slots: number } {
  const ends: number[] = [];
  const marks = [...rows]
    .sort((a, b) => a.startMs - b.startMs || a.endMs - b.endMs)
    .map((row) => {
      let slot = ends.findIndex((end) => end <= row.startMs);
      if (slot < 0) slot = ends.push(row.endMs) - 1;
      else ends[slot] = row.endMs;
      return { ...row, slot: slot % MAX_SLOTS };
    });
  return { marks, slots: Math.max(1, Math.min(ends.length, MAX_SLOTS)) };
}

function binned(input: TimelineInput, count: number): { bins: TimelineBin[]; binMs: number } {
  const binMs = Math.max(1, Math.ceil((input.endMs - input.startMs) / count));
  const busy = new Map<string, Float64Array>();
  const finished = new Map<string, Int32Array>();
  for (const node of input.nodes) {
    busy.set(node, new Float64Array(count));
    finished.set(node, new Int32Array(count));
  }
  const binOf = (ms: number) => Math.min(count - 1, Math.max(0, Math.floor((ms - input.startMs) / binMs)));
  for (const row of input.rows) {
    const nodeBusy = busy.get(row.node);
    if (!nodeBusy) continue;
    for (let b = binOf(row.startMs); b <= binOf(row.endMs); b++) {
      const start = input.startMs + b * binMs;
      const overlap = Math.min(row.endMs, start + binMs) - Math.max(row.startMs, start);
      if (overlap > 0) nodeBusy[b]! += overlap / binMs;
    }
    finished.get(row.node)![binOf(row.endMs)]!++;
  }
  const bins: TimelineBin[] = [];
  for (const node of input.nodes) {
    const b = busy.get(node)!;
    const f = finished.get(node)!;
    for (let i = 0; i < count; i++) {
      if (b[i]! > 0 || f[i]! > 0) {
        bins.push({ node, startMs: input.startMs + i * binMs, endMs: input.startMs + (i + 1) * binMs, busy: Math.round(b[i]! * 100) / 100, finished: f[i]! });
      }
    }
  }
  return { bins, binMs };
}

/**
 * Partitions finished per second across the whole span, in `count` bins at most, each a second
 * or longer; every bin, empty ones included, so that a stall shows as one. The last bin may end
 * past the span.
 */
export function rateOverTime(rows: readonly { endMs: number }[], span: Span, count = RATE_BINS): TimelineRate[] {
  const length = Math.max(1, span.endMs - span.startMs);
  const binMs = Math.max(1000, Math.ceil(length / count));
  const finished = new Array<number>(Math.ceil(length / binMs)).fill(0);
  for (const row of rows) {
    const bin = Math.min(finished.length - 1, Math.max(0, Math.floor((row.endMs - span.startMs) / binMs)));
    finished[bin]!++;
  }
  return finished.map((n, i) => ({ startMs: span.startMs + i * binMs, endMs: span.startMs + (i + 1) * binMs, perSecond: Math.round((n / (binMs / 1000)) * 100) / 100 }));
}

export function buildTimeline(input: TimelineInput): Timeline {
  const base = {
    startMs: input.startMs,
    endMs: input.endMs,
    paused: input.paused,
    throttled: input.throttled,
    limitChanges: input.limitChanges ?? [],
    rate: rateOverTime(input.rows, input),
  };
  if (input.rows.length > (input.maxMarks ?? MAX_MARKS)) {
    const { bins, binMs } = binned(input, input.bins ?? BINS);
    return { ...base, lanes: input.nodes.map((node) => ({ node, slots: 1 })), detail: 'bins', marks: [], bins, binMs };
  }
  const lanes: Timeline['lanes'] = [];
  const marks: TimelineMark[] = [];
  for (const node of input.nodes) {
    const laid = assignSlots(input.rows.filter((r) => r.node === node));
    lanes.push({ node, slots: laid.slots });
    marks.push(...laid.marks);
  }
  return { ...base, lanes, detail: 'partitions', marks, bins: [], binMs: null };
}
