// The Live page's feed: the snapshot (GET /console/api/live) once, then one sample a second from the
// Server-Sent Events stream (and a `send` event as soon as a send is accepted), reconnecting with a growing pause when the stream drops, and taking a fresh
// snapshot after a drop so the gap is filled.
import { API_BASE } from './api'
import type { Live, Sample } from './types'

/** What the feed needs of EventSource (the browser's; tests pass a fake). */
export interface SourceLike {
  readyState: number
  onopen: ((ev: Event) => unknown) | null
  onerror: ((ev: Event) => unknown) | null
  addEventListener(type: string, fn: (ev: MessageEvent) => void): void
  close(): void
}

export interface FeedOptions {
  /** Fetch the snapshot. */
  snapshot: () => Promise<Live>
  /** Called with each snapshot (the first and after every reconnect). */
  onSnapshot: (l: Live) => void
  /** Called with each streamed sample. */
  onSample: (s: Sample) => void
  /** Called when the engine tells of a send at once (event `send`), between samples, with its sends_total. */
  onSend?: (sendsTotal: number) => void
  /** Called when the feed's state changes, for the page's "live" / "reconnecting" badge. */
  onState?: (state: FeedState, detail?: string) => void
  /** Asked when the stream was closed for good (e.g. a 401): resolves true to retry. */
  stillSignedIn?: () => Promise<boolean>
  open?: (url: string) => SourceLike
  /** Pauses between reconnects, in ms: the first, doubling up to the last. */
  backoff?: { first: number; max: number }
  timers?: { set: (fn: () => void, ms: number) => unknown; clear: (h: unknown) => void }
}

export type FeedState = 'connecting' | 'live' | 'reconnecting' | 'stopped' | 'error'

const CLOSED = 2

/** Feed runs the snapshot-then-stream cycle until stop(). */
export class Feed {
  private src: SourceLike | null = null
  private timer: unknown = null
  private pause: number
  private stopped = false
  private dropped = false

  constructor(private readonly o: FeedOptions) {
    this.pause = o.backoff?.first ?? 1000
  }

  /** start takes the snapshot and opens the stream. */
  async start(): Promise<void> {
    this.stopped = false
    this.o.onState?.('connecting')
    try {
      this.o.onSnapshot(await this.o.snapshot())
    } catch (e) {
      if (this.stopped) return
      this.o.onState?.('error', e instanceof Error ? e.message : String(e))
      this.retry()
      return
    }
    if (!this.stopped) this.connect()
  }

  /** stop closes the stream and cancels any reconnect. */
  stop(): void {
    this.stopped = true
    this.src?.close()
    this.src = null
    if (this.timer !== null) (this.o.timers?.clear ?? clearTimeout)(this.timer as ReturnType<typeof setTimeout>)
    this.timer = null
    this.o.onState?.('stopped')
  }

  private connect(): void {
    const open = this.o.open ?? ((u: string) => new EventSource(u) as unknown as SourceLike)
    const src = open(API_BASE + '/live/stream')
    this.src = src
    src.onopen = () => {
      this.pause = this.o.backoff?.first ?? 1000
      this.o.onState?.('live')
      if (this.dropped) {
        // The stream came back by itself: samples were missed meanwhile; a snapshot fills them in.
        this.dropped = false
        this.o.snapshot().then(
          (l) => !this.stopped && this.o.onSnapshot(l),
          () => undefined,
        )
      }
    }
    src.addEventListener('sample', (ev: MessageEvent) => {
      let s: Sample
      try {
        s = JSON.parse(ev.data as string) as Sample
      } catch {
        return
      }
      if (typeof s?.t === 'number') this.o.onSample(s)
    })
    src.addEventListener('send', (ev: MessageEvent) => {
      let n: unknown
      try {
        n = (JSON.parse(ev.data as string) as { sends_total?: unknown }).sends_total
      } catch {
        return
      }
      if (typeof n === 'number') this.o.onSend?.(n)
    })
    src.onerror = () => {
      if (this.stopped) return
      this.dropped = true
      if (src.readyState !== CLOSED) {
        this.o.onState?.('reconnecting') // EventSource retries by itself
        return
      }
      src.close()
      this.src = null
      this.o.onState?.('reconnecting')
      const check = this.o.stillSignedIn ?? (async () => true)
      check().then(
        (ok) => (ok ? this.retry() : this.stop()),
        () => this.retry(),
      )
    }
  }

  private retry(): void {
    if (this.stopped) return
    const wait = this.pause
    this.pause = Math.min(this.pause * 2, this.o.backoff?.max ?? 30000)
    const set = this.o.timers?.set ?? ((fn: () => void, ms: number) => setTimeout(fn, ms))
    this.timer = set(() => {
      this.timer = null
      void this.start()
    }, wait)
  }
}
