// Types for @variantd/client (docs/PROTOCOL.md is the reference for fields).

/** The visitor's context; every field but `slots` is optional. */
export interface DecideRequest {
  /** Slots to decide (at most max-slots, default 32). */
  slots: string[];
  /** Visitor id (first-party cookie). Send it: without it every visitor gets the same split arm. */
  vid?: string;
  ip?: string;
  ua?: string;
  referer?: string;
  url?: string;
  lang?: string;
  /** Unix seconds; default: the daemon's clock. */
  ts?: number;
  tz?: string;
  attrs?: Record<string, string | number | boolean | null>;
  explain?: boolean;
}

export interface SlotResult {
  variant: string | null;
  payload: unknown;
  /** The segment whose rule chose the variant; null for the default. */
  segment: string | null;
}

export interface ClientError {
  /** timeout, unavailable, client, bad_reply, or the daemon's code (invalid_params, not_ready, …). */
  code: string;
  message: string;
}

export interface DecideResult {
  /** false: the daemon did not answer in time or refused; slots hold the defaults. */
  ok: boolean;
  error?: ClientError;
  version: string | null;
  slots: Record<string, SlotResult>;
  segments: string[];
  /** Unix seconds until which the answer holds (null: until the ruleset changes). */
  valid_until: number | null;
  context?: Record<string, unknown>;
  trace?: Record<string, Array<{ segment: string; variant: string; matched: boolean | null; chosen: boolean }>>;
  ruleset?: { version: string; source: string; age: number; stale: boolean };
}

export interface PingResult {
  pong: true;
  ready: boolean;
  version: string | null;
  source: string;
  age: number | null;
  stale: boolean;
}

export interface ClientOptions {
  /** Default 127.0.0.1. */
  host?: string;
  /** Default 7700. */
  port?: number;
  /** Total time per call, connecting and the one retry included. Default 50 ms. */
  budgetMs?: number;
  /** Per slot: the variant id (or {variant, payload}) to use when the daemon cannot answer. */
  defaults?: Record<string, string | { variant: string; payload?: unknown }>;
  /** Called with every failure (for logs/metrics); never lets an exception reach the page. */
  onError?: (error: ClientError) => void;
}

export class VariantdClient {
  constructor(options?: ClientOptions);
  /** Never rejects: on any failure, resolves to the defaults with ok: false. */
  decide(req: DecideRequest): Promise<DecideResult>;
  /** decide plus context, trace and ruleset. Never rejects. */
  explain(req: DecideRequest): Promise<DecideResult>;
  /** The daemon's status, or null when it cannot be reached in time. */
  ping(): Promise<PingResult | null>;
  /** Sends [2, "track", [event]] (no answer). true if written to a live connection. Never throws. */
  track(event: Record<string, unknown>): boolean;
  /** Closes the connection; the next call opens a new one. */
  close(): void;
}

export default VariantdClient;
