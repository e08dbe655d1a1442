import { describe, expect, it } from 'vitest'
import { Feed, type FeedState, type SourceLike } from './stream'
import type { Live, Sample } from './types'

class FakeSource implements SourceLike {
  readyState = 0
  onopen: ((ev: Event) => unknown) | null = null
  onerror: ((ev: Event) => unknown) | null = null
  listeners: Record<string, ((ev: MessageEvent) => void)[]> = {}
  closed = false
  constructor(readonly url: string) {}
  addEventListener(type: string, fn: (ev: MessageEvent) => void) {
    ;(this.listeners[type] ??= []).push(fn)
  }
  close() {
    this.closed = true
    this.readyState = 2
  }
  open() {
    this.readyState = 1
    this.onopen?.(new Event('open'))
  }
  emit(type: string, data: string) {
    for (const fn of this.listeners[type] ?? []) fn(new MessageEvent(type, { data }))
  }
  fail(closed: boolean) {
    this.readyState = closed ? 2 : 0
    this.onerror?.(new Event('error'))
  }
}

const live = (n: number): Live => ({ now: '', step_15m: 1, step_24h: 60, m15: [{ t: n } as Sample], h24: [], trunks: [] })
const tick = () => new Promise((r) => setTimeout(r, 0))

function setup(opts: { signedIn?: boolean; failSnapshot?: number } = {}) {
  const sources: FakeSource[] = []
  const snapshots: number[] = []
  const samples: number[] = []
  const sends: number[] = []
  const states: FeedState[] = []
  const timers: { fn: () => void; ms: number }[] = []
  let n = 0
  let failures = opts.failSnapshot ?? 0
  const feed = new Feed({
    snapshot: async () => {
      if (failures-- > 0) throw new Error('engine down')
      return live(++n)
    },
    onSnapshot: (l) => snapshots.push(l.m15![0].t),
    onSample: (s) => samples.push(s.t),
    onSend: (n) => sends.push(n),
    onState: (s) => states.push(s),
    stillSignedIn: async () => opts.signedIn ?? true,
    open: (u) => {
      const s = new FakeSource(u)
      sources.push(s)
      return s
    },
    backoff: { first: 100, max: 400 },
    timers: { set: (fn, ms) => timers.push({ fn, ms }), clear: () => undefined },
  })
  return { feed, sources, snapshots, samples, sends, states, timers }
}

describe('the live feed', () => {
  it('takes a snapshot, then streams samples from the engine', async () => {
    const f = setup()
    await f.feed.start()
    expect(f.snapshots).toEqual([1])
    expect(f.sources.map((s) => s.url)).toEqual(['/console/api/live/stream'])
    f.sources[0].open()
    f.sources[0].emit('sample', '{"t":5,"sends":1}')
    f.sources[0].emit('sample', 'not json')
    f.sources[0].emit('sample', '{"no":"t"}')
    f.sources[0].emit('sample', '{"t":6}')
    expect(f.samples).toEqual([5, 6])
    expect(f.states).toEqual(['connecting', 'live'])
  })

  it('tells of each send event between samples, with its sends_total', async () => {
    const f = setup()
    await f.feed.start()
    f.sources[0].open()
    f.sources[0].emit('send', '{"sends_total":7}')
    f.sources[0].emit('send', 'not json')
    f.sources[0].emit('send', '{"sends_total":"8"}')
    f.sources[0].emit('send', '{"sends_total":9}')
    expect(f.sends).toEqual([7, 9])
    expect(f.samples).toEqual([])
  })

  it('after a drop EventSource retries by itself, and the reopen takes a snapshot to fill the gap', async () => {
    const f = setup()
    await f.feed.start()
    f.sources[0].open()
    f.sources[0].fail(false)
    expect(f.states.at(-1)).toBe('reconnecting')
    expect(f.sources.length).toBe(1)
    f.sources[0].open()
    await tick()
    expect(f.snapshots).toEqual([1, 2])
    expect(f.states.at(-1)).toBe('live')
  })

  it('a stream closed for good reconnects after a growing pause while still signed in', async () => {
    const f = setup()
    await f.feed.start()
    f.sources[0].fail(true)
    await tick()
    expect(f.sources[0].closed).toBe(true)
    expect(f.timers.map((t) => t.ms)).toEqual([100])
    f.timers[0].fn()
    await tick()
    expect(f.sources.length).toBe(2)
    expect(f.snapshots).toEqual([1, 2])
    f.sources[1].fail(true)
    await tick()
    f.timers[1].fn()
    await tick()
    f.sources[2].fail(true)
    await tick()
    f.timers[2].fn()
    await tick()
    f.sources[3].fail(true)
    await tick()
    expect(f.timers.map((t) => t.ms)).toEqual([100, 200, 400, 400])
  })

  it('a stream closed because the session is gone stops', async () => {
    const f = setup({ signedIn: false })
    await f.feed.start()
    f.sources[0].fail(true)
    await tick()
    expect(f.timers.length).toBe(0)
    expect(f.states.at(-1)).toBe('stopped')
  })

  it('a failed snapshot is retried, and stop cancels everything', async () => {
    const f = setup({ failSnapshot: 1 })
    await f.feed.start()
    expect(f.states).toEqual(['connecting', 'error'])
    expect(f.sources.length).toBe(0)
    f.timers[0].fn()
    await tick()
    expect(f.snapshots).toEqual([1])
    expect(f.sources.length).toBe(1)
    f.feed.stop()
    expect(f.sources[0].closed).toBe(true)
    f.sources[0].fail(true)
    await tick()
    expect(f.timers.length).toBe(1)
  })
})
