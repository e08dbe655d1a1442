// The Live page's two windows of samples: 15 minutes of one-second samples and 24 hours of one-minute ones,
// seeded by GET /console/api/live and kept up to date by the stream's samples.
import type { Sample } from './types'

/** Window lengths in seconds. */
export const M15 = 15 * 60
export const H24 = 24 * 60 * 60

const COUNTS = ['sends', 'missed', 'answered', 'failed', 'approved', 'ended'] as const

/** Series holds the samples of one window, oldest first, at most `span` seconds old. */
export class Series {
  samples: Sample[] = []
  constructor(
    readonly step: number,
    readonly span: number,
  ) {}

  /** reset replaces the samples (a fresh snapshot), dropping what is older than the window. */
  reset(samples: Sample[] | null | undefined, now?: number): void {
    this.samples = [...(samples ?? [])].sort((a, b) => a.t - b.t)
    this.trim(now)
  }

  /** last is the newest sample, if any. */
  get last(): Sample | undefined {
    return this.samples[this.samples.length - 1]
  }

  /** add takes a sample of the stream. In a one-second window it is appended (a repeat of the newest t
   * replaces it; an older one is dropped). In a coarser window it is added into the bucket of its minute:
   * counts summed, gauges and sends_total the newest, p99 the larger, p50 the mean of the non-null ones
   * (an estimate until the next snapshot gives the engine's own). It returns whether anything changed. */
  add(s: Sample): boolean {
    const last = this.last
    if (this.step <= 1) {
      if (last && s.t < last.t) return false
      if (last && s.t === last.t) this.samples[this.samples.length - 1] = s
      else this.samples.push(s)
      this.trim(s.t)
      return true
    }
    const bucket = Math.floor(s.t / this.step) * this.step
    if (last && bucket < last.t) return false
    if (!last || bucket > last.t) {
      this.samples.push({ ...s, t: bucket, channels: cloneChannels(s.channels), p50n: s.pdd_p50 === null ? 0 : 1 } as Sample)
      this.trim(s.t)
      return true
    }
    const b = last as Sample & { p50n?: number }
    for (const k of COUNTS) b[k] += s[k]
    b.in_flight = s.in_flight
    b.queue = s.queue
    b.sends_total = Math.max(b.sends_total, s.sends_total)
    if (s.pdd_p99 !== null) b.pdd_p99 = b.pdd_p99 === null ? s.pdd_p99 : Math.max(b.pdd_p99, s.pdd_p99)
    if (s.pdd_p50 !== null) {
      const n = b.p50n ?? (b.pdd_p50 === null ? 0 : 1)
      b.pdd_p50 = b.pdd_p50 === null ? s.pdd_p50 : (b.pdd_p50 * n + s.pdd_p50) / (n + 1)
      b.p50n = n + 1
    }
    for (const [ch, c] of Object.entries(s.channels ?? {})) {
      const into = (b.channels[ch] ??= { sent: 0, delivered: 0, failed: 0 })
      into.sent += c.sent
      into.delivered += c.delivered
      into.failed += c.failed
    }
    return true
  }

  private trim(now?: number): void {
    const newest = now ?? this.last?.t
    if (newest === undefined) return
    const from = newest - this.span
    let i = 0
    while (i < this.samples.length && this.samples[i].t <= from) i++
    if (i > 0) this.samples.splice(0, i)
  }

  /** totals sums the counts of the window, and of each channel. */
  totals(): Record<(typeof COUNTS)[number], number> & { channels: Record<string, { sent: number; delivered: number; failed: number }> } {
    const t = { sends: 0, missed: 0, answered: 0, failed: 0, approved: 0, ended: 0, channels: {} as Record<string, { sent: number; delivered: number; failed: number }> }
    for (const s of this.samples) {
      for (const k of COUNTS) t[k] += s[k]
      for (const [ch, c] of Object.entries(s.channels ?? {})) {
        const into = (t.channels[ch] ??= { sent: 0, delivered: 0, failed: 0 })
        into.sent += c.sent
        into.delivered += c.delivered
        into.failed += c.failed
      }
    }
    return t
  }

  /** columns gives uPlot's data: x (unix seconds) then one array per field; `per` divides counts into a rate
   * per second of the window's step (sends per second out of a minute's sends). */
  columns(fields: ((s: Sample) => number | null)[]): (number | null)[][] {
    return [this.samples.map((s) => s.t), ...fields.map((f) => this.samples.map(f))]
  }

  /** conversion is approved / sends over a trailing window of `over` seconds at each sample (null when no
   * send), so a one-second series gives a readable line instead of 0s and 1s. */
  conversion(over: number): (number | null)[] {
    const out: (number | null)[] = []
    let sends = 0
    let approved = 0
    let j = 0
    for (let i = 0; i < this.samples.length; i++) {
      const s = this.samples[i]
      sends += s.sends
      approved += s.approved
      while (this.samples[j].t <= s.t - over) {
        sends -= this.samples[j].sends
        approved -= this.samples[j].approved
        j++
      }
      out.push(sends > 0 ? Math.min(1, approved / sends) : null)
    }
    return out
  }
}

function cloneChannels(c: Sample['channels'] | undefined): Sample['channels'] {
  const out: Sample['channels'] = {}
  for (const [k, v] of Object.entries(c ?? {})) out[k] = { ...v }
  return out
}
