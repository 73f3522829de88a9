/**
 * Rate limiting math, free of clocks so that workflows stay deterministic: the caller says
 * how much time passed (read from a clock recorded in the workflow's history) and the math
 * says how many partitions may start.
 */

/** Shortest and longest pacing tick: one workflow timer per tick, never one per token. */
export const MIN_TICK_MS = 100;
export const MAX_TICK_MS = 60_000;
/** The lateness of a timer that `refill` makes up for. */
export const MAX_LATENESS_MS = 2000;
/** The slowest pace a node is ever throttled down to: one partition a minute. */
export const MIN_RATE = 1 / 60;

/**
 * A token bucket: `rate` tokens per second up to `burst` tokens. One token starts one
 * partition. `rate` null means unlimited: every request is granted.
 */
export class TokenBucket {
  private burst: number;
  private level: number;

  constructor(
    private rate: number | null,
    burst: number,
    tokens?: number,
  ) {
    this.burst = rate === null ? burst : TokenBucket.usableBurst(rate, burst);
    this.level = Math.min(tokens ?? this.burst, this.burst);
  }

  /** The default burst for a rate: one second's worth, at least 1. */
  static defaultBurst(rate: number | null): number {
    return rate === null ? 1 : Math.max(1, Math.ceil(rate));
  }

  /** The burst actually used: at least two shortest ticks' worth of tokens, so the rate stays reachable. */
  static usableBurst(rate: number, burst: number): number {
    return Math.max(burst, Math.ceil((2 * rate * MIN_TICK_MS) / 1000));
  }

  /**
   * Timer length: the time to refill half the bucket. A timer fires late more often than
   * not (by the time a workflow task takes, and by up to the server's timer precision), and
   * the refill uses the time that really passed; half a bucket per tick leaves room for
   * that lateness before tokens spill over the burst and the rate falls short.
   */
  static tickMs(rate: number, burst: number): number {
    return Math.min(MAX_TICK_MS, Math.max(MIN_TICK_MS, Math.floor((500 * burst) / rate)));
  }

  get limited(): boolean {
    return this.rate !== null;
  }

  get available(): number {
    return this.rate === null ? Infinity : Math.floor(this.level + 1e-9);
  }

  get full(): boolean {
    return this.rate === null || this.level >= this.burst;
  }

  get tick(): number {
    return this.rate === null ? MAX_TICK_MS : TokenBucket.tickMs(this.rate, this.burst);
  }

  /** Changes the rate and burst; tokens above the new burst are dropped. */
  configure(rate: number | null, burst: number): void {
    this.rate = rate;
    this.burst = rate === null ? burst : TokenBucket.usableBurst(rate, burst);
    this.level = Math.min(this.level, this.burst);
  }

  /**
   * Adds the tokens of `elapsedMs`, up to the burst. When a tick that should have come after
   * `scheduledMs` comes late (servers whose timers fire up to a second late), the tokens of
   * the lateness (at most MAX_LATENESS_MS) may go over the burst: a consumer awake all along
   * would have taken them as they came.
   */
  refill(elapsedMs: number, scheduledMs = elapsedMs): void {
    if (this.rate === null) return;
    const lateness = Math.min(MAX_LATENESS_MS, Math.max(0, elapsedMs - scheduledMs));
    const cap = this.burst + (this.rate * lateness) / 1000;
    this.level = Math.min(cap, this.level + (this.rate * elapsedMs) / 1000);
  }

  /** Takes up to `wanted` tokens and returns how many were granted. */
  take(wanted: number): number {
    if (this.rate === null) return wanted;
    const granted = Math.min(wanted, this.available);
    this.level -= granted;
    return granted;
  }

  get tokens(): number {
    return this.level;
  }
}

export type AimdJSON = { ceiling: number | null; step: number; recoverAt: number | null; throttles: number };

/**
 * Additive increase, multiplicative decrease: when the downstream system throttles a
 * node, its pace halves; every second without throttling it grows by a small step, until
 * it is back at the operator's rate (or, when that is unlimited, at twice the pace it was
 * throttled at, where the ceiling is lifted).
 */
export class Aimd {
  private ceiling: number | null;
  private step: number;
  private recoverAt: number | null;
  private throttleCount: number;

  constructor(state?: AimdJSON) {
    this.ceiling = state?.ceiling ?? null;
    this.step = state?.step ?? 0;
    this.recoverAt = state?.recoverAt ?? null;
    this.throttleCount = state?.throttles ?? 0;
  }

  get active(): boolean {
    return this.ceiling !== null;
  }

  get throttles(): number {
    return this.throttleCount;
  }

  /** The pace to run at given the operator's rate (null: unlimited). */
  effective(operatorRate: number | null): number | null {
    if (this.ceiling === null) return operatorRate;
    return operatorRate === null ? this.ceiling : Math.min(operatorRate, this.ceiling);
  }

  /**
   * A throttling error: halve the current pace, which is the lower of the configured pace
   * and `observedRate`, the pace the node actually achieved (it may run below its rate
   * when its concurrency is the bound). Call it once per congestion event, not once per
   * throttled partition of the same burst.
   */
  onThrottle(operatorRate: number | null, observedRate: number): void {
    this.throttleCount++;
    const observed = Number.isFinite(observedRate) && observedRate > 0 ? observedRate : Infinity;
    const lowest = Math.min(this.effective(operatorRate) ?? Infinity, observed);
    const current = Number.isFinite(lowest) ? Math.max(lowest, MIN_RATE * 2) : 1;
    this.ceiling = Math.max(MIN_RATE, current / 2);
    this.recoverAt = operatorRate === null ? current * 2 : null;
    // Back to the pace that was throttled in about 10 seconds of calm, then on at the same
    // slope, probing towards the operator's rate: a step sized by the operator's rate would
    // undo the slow-down at once when that rate is far above what the system takes.
    this.step = Math.max(current / 20, MIN_RATE);
  }

  /** Time passed without throttling: grow the ceiling, and lift it once recovered. */
  onCalm(operatorRate: number | null, elapsedMs: number): void {
    if (this.ceiling === null) return;
    this.ceiling += (this.step * elapsedMs) / 1000;
    // No limit left to recover to (the operator lifted the rate since): lift the ceiling now.
    const limit = operatorRate ?? this.recoverAt;
    if (limit === null || this.ceiling >= limit) {
      this.ceiling = null;
      this.recoverAt = null;
    }
  }

  toJSON(): AimdJSON {
    return { ceiling: this.ceiling, step: this.step, recoverAt: this.recoverAt, throttles: this.throttleCount };
  }
}

export type LatencyPacerJSON = {
  limit: number | null;
  samples: number[];
  slowdowns: number;
  /** Started slowly (`startSlow`) and not slowed down since: each step doubles the limit. */
  starting?: boolean;
};

/** The latest latencies a decision looks at (of partitions started since the last slow-down). */
export const LATENCY_WINDOW = 20;
/** Fewer latencies than this decide nothing yet. */
export const LATENCY_MIN_SAMPLES = 5;
/** A slow-down keeps at least this much of the partitions running, however far over the target the p95 was ... */
const SLOWDOWN_FLOOR = 0.5;
/** ... and at most this much, however close to it. */
const SLOWDOWN_CEILING = 0.9;
/**
 * The cap climbs only while the p95 is below this share of the target, and holds between it and
 * the target: probing right up to the target would put every probe's partitions over it.
 */
const CLIMB_BELOW = 0.9;

/** The 95th percentile of `values` (nearest rank); null when empty. */
export function p95(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(sorted.length * 0.95) - 1)]!;
}

/**
 * Pacing on measured load (`pace: { latencyTarget }`): additive increase, multiplicative
 * decrease of how many activities a node runs at once, driven by the latency of its
 * partitions (or the latency its transform reports for the system it calls).
 *
 * It limits what runs at once rather than the rate of starts: what loads a warehouse is the
 * work in flight, and by Little's law (in flight = rate × latency) a fixed rate puts ever more
 * work in flight as latency grows, feeding the queue it reacts to, while a cap on the work in
 * flight bounds the load however slow the system gets. The rate follows: the cap divided by
 * the latency.
 *
 * When the p95 of the latest latencies goes over the target, the cap drops to what was running
 * times target / p95 (kept between half and nine tenths of it); while the p95 stays below nine
 * tenths of the target and work waits, it climbs by one activity per target's worth of time
 * (about one per round trip at the target), up to the node's concurrency, where the cap is
 * lifted; in between, it holds. It sits beside `Aimd` (throttling errors, on the rate): both apply.
 */
export class LatencyPacer {
  /** Activities at once; fractional while it climbs (the whole part applies). Null: no cap of its own. */
  private cap: number | null;
  private samples: number[];
  private slowdownCount: number;
  private starting: boolean;

  constructor(state?: LatencyPacerJSON) {
    this.cap = state?.limit ?? null;
    this.samples = state?.samples ? [...state.samples] : [];
    this.slowdownCount = state?.slowdowns ?? 0;
    this.starting = state?.starting === true;
  }

  get active(): boolean {
    return this.cap !== null;
  }

  get slowdowns(): number {
    return this.slowdownCount;
  }

  /** The p95 of the latest latencies since the last slow-down; null before any. */
  get recentP95(): number | null {
    return p95(this.samples);
  }

  /** Activities the node may run at once, given its concurrency. */
  limit(concurrency: number): number {
    return this.cap === null ? concurrency : Math.max(1, Math.min(concurrency, Math.floor(this.cap)));
  }

  /**
   * A node with a latency target and nothing measured yet starts at one activity at a time, and
   * doubles it each time the latencies of the activities started at the last step are well under
   * the target, until the first slow-down (then it climbs one activity per target's worth of
   * time, as after any) or its concurrency. So none of the batches handed out before the first
   * latencies run over the target unseen. No effect once a cap or a latency is known (a
   * continued run goes on with what it measured).
   */
  startSlow(): void {
    if (this.cap !== null || this.samples.length > 0 || this.slowdownCount > 0) return;
    this.cap = 1;
    this.starting = true;
  }

  /**
   * Latencies of partitions whose activities started since the last slow-down, with nothing
   * older in flight (older ones describe a load no longer in force). `running` is how many
   * activities the node runs now, `concurrency` its limit. Returns whether it slowed down.
   */
  observe(latencies: readonly number[], targetMs: number, running: number, concurrency: number): boolean {
    if (latencies.length === 0) return false;
    this.samples.push(...latencies);
    this.samples.splice(0, Math.max(0, this.samples.length - LATENCY_WINDOW));
    const high = p95(this.samples)!;
    if (this.samples.length < LATENCY_MIN_SAMPLES || high <= targetMs) return false;
    const keep = Math.min(SLOWDOWN_CEILING, Math.max(SLOWDOWN_FLOOR, targetMs / high));
    const current = Math.min(this.limit(concurrency), Math.max(1, running));
    this.cap = Math.max(1, Math.floor(current * keep));
    this.samples = [];
    this.slowdownCount++;
    this.starting = false;
    return true;
  }

  /**
   * Whether the cap is what holds work back: `inFlight` activities run, as many as it allows,
   * and fewer than the node's `concurrency` (of which a share of nothing, 0, holds it instead).
   */
  binds(inFlight: number, concurrency: number): boolean {
    return this.cap !== null && concurrency > 0 && Math.floor(this.cap) < concurrency && inFlight >= this.limit(concurrency);
  }

  /**
   * `elapsedMs` passed with work waiting: the cap climbs while the p95 is well under the target
   * (not before a latency since the last slow-down says so), and is lifted once it reaches the
   * node's concurrency. Returns whether the limit that applies changed.
   *
   * `keepAtZero`: a concurrency of 0 (a hold) never lifts the cap, which would let the node
   * restart at full concurrency against a system it measured as overloaded. Off in runs from
   * before it existed (patch `latency-cap-climbs-when-it-binds`).
   *
   * `doubleAtMost`: one step at most doubles the limit (time counts only when the node wakes, at
   * a batch's end, so a long batch gave one step of many activities at once, none of them
   * measured), and a step that raises the limit forgets the latencies it climbed on: they were
   * measured under fewer activities, so the next step waits for latencies of the load this one
   * allows (the caller observes only activities started since). Off in runs from before it
   * existed (patch `latency-slow-start`).
   */
  onCalm(targetMs: number, concurrency: number, elapsedMs: number, keepAtZero = false, doubleAtMost = false): boolean {
    if (this.cap === null) return false;
    const high = p95(this.samples);
    if (high === null || high > targetMs * CLIMB_BELOW) return false;
    const before = this.limit(concurrency);
    const climbed = this.cap + elapsedMs / targetMs;
    this.cap = this.starting ? 2 * before : doubleAtMost ? Math.min(climbed, 2 * before) : climbed;
    if (this.cap >= concurrency && !(keepAtZero && concurrency <= 0)) {
      this.cap = null;
      this.starting = false;
    }
    const raised = this.limit(concurrency) !== before;
    if (raised && doubleAtMost) this.samples = [];
    return raised;
  }

  toJSON(): LatencyPacerJSON {
    return { limit: this.cap, samples: [...this.samples], slowdowns: this.slowdownCount, ...(this.starting ? { starting: true } : {}) };
  }
}
