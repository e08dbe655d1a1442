import { describe, expect, it } from 'vitest'
import { Series } from './series'
import type { Sample } from './types'

function sample(t: number, o: Partial<Sample> = {}): Sample {
  return {
    t, sends: 0, missed: 0, answered: 0, failed: 0, approved: 0, ended: 0, in_flight: 0, queue: 0,
    pdd_p50: null, pdd_p99: null, channels: {}, sends_total: 0, ...o,
  }
}

describe('one-second window', () => {
  it('appends, replaces a repeat, ignores the past and keeps 15 minutes', () => {
    const s = new Series(1, 900)
    s.reset([sample(1000, { sends: 1 }), sample(999)])
    expect(s.samples.map((x) => x.t)).toEqual([999, 1000])
    expect(s.add(sample(1001, { sends: 2 }))).toBe(true)
    expect(s.add(sample(1001, { sends: 3 }))).toBe(true)
    expect(s.samples.length).toBe(3)
    expect(s.last?.sends).toBe(3)
    expect(s.add(sample(998))).toBe(false)
    s.add(sample(1900))
    // 1900 - 900 = 1000: samples at or before it fall out of the window
    expect(s.samples.map((x) => x.t)).toEqual([1001, 1900])
  })

  it('takes a window the engine has nothing for yet (null) as empty', () => {
    const s = new Series(60, 86400)
    s.reset(null)
    expect(s.samples).toEqual([])
    expect(s.add(sample(120, { sends: 1 }))).toBe(true)
    expect(s.totals().sends).toBe(1)
  })

  it('drops what a snapshot holds beyond the window', () => {
    const s = new Series(1, 900)
    s.reset([sample(0), sample(100), sample(950)])
    expect(s.samples.map((x) => x.t)).toEqual([100, 950])
  })

  it('sums totals, per channel too', () => {
    const s = new Series(1, 900)
    s.reset([
      sample(1, { sends: 2, approved: 1, channels: { sms: { sent: 2, delivered: 1, failed: 0 } } }),
      sample(2, { sends: 3, missed: 2, channels: { sms: { sent: 1, delivered: 1, failed: 1 }, flashcall: { sent: 3, delivered: 2, failed: 0 } } }),
    ])
    const t = s.totals()
    expect(t.sends).toBe(5)
    expect(t.approved).toBe(1)
    expect(t.missed).toBe(2)
    expect(t.channels.sms).toEqual({ sent: 3, delivered: 2, failed: 1 })
    expect(t.channels.flashcall).toEqual({ sent: 3, delivered: 2, failed: 0 })
  })

  it('gives uPlot columns and a trailing conversion', () => {
    const s = new Series(1, 900)
    s.reset([sample(10, { sends: 2 }), sample(11, { approved: 1 }), sample(80, { sends: 1, approved: 1 })])
    expect(s.columns([(x) => x.sends])).toEqual([[10, 11, 80], [2, 0, 1]])
    // over 60 s: at 11, 1 of 2; at 80 the first two are out of the window: 1 of 1
    expect(s.conversion(60)).toEqual([0, 0.5, 1])
    const none = new Series(1, 900)
    none.reset([sample(1)])
    expect(none.conversion(60)).toEqual([null])
  })
})

describe('one-minute window', () => {
  it('adds seconds into the bucket of their minute', () => {
    const s = new Series(60, 86400)
    s.reset([sample(120, { sends: 10, pdd_p99: 2, sends_total: 10, channels: { flashcall: { sent: 10, delivered: 9, failed: 1 } } })])
    s.add(sample(150, { sends: 1, in_flight: 4, sends_total: 11, pdd_p99: 3, pdd_p50: 1, channels: { flashcall: { sent: 1, delivered: 0, failed: 0 } } }))
    s.add(sample(151, { sends: 2, in_flight: 2, sends_total: 13, pdd_p99: 1, pdd_p50: 2 }))
    expect(s.samples.length).toBe(1)
    const b = s.last!
    expect(b.t).toBe(120)
    expect(b.sends).toBe(13)
    expect(b.in_flight).toBe(2)
    expect(b.sends_total).toBe(13)
    expect(b.pdd_p99).toBe(3)
    expect(b.pdd_p50).toBe(1.5)
    expect(b.channels.flashcall).toEqual({ sent: 11, delivered: 9, failed: 1 })
  })

  it('opens a new bucket at the next minute without touching the sample it came from', () => {
    const s = new Series(60, 86400)
    s.reset([sample(120, { sends: 1 })])
    const src = sample(185, { sends: 4, channels: { sms: { sent: 4, delivered: 0, failed: 0 } } })
    s.add(src)
    s.add(sample(190, { sends: 1, channels: { sms: { sent: 1, delivered: 1, failed: 0 } } }))
    expect(s.samples.map((x) => [x.t, x.sends])).toEqual([[120, 1], [180, 5]])
    expect(src.channels.sms).toEqual({ sent: 4, delivered: 0, failed: 0 })
    expect(s.add(sample(100))).toBe(false)
  })
})
