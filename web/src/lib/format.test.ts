import { describe, expect, it } from 'vitest'
import { clock, duration, localInputToRFC3339, localTime, percent, recipientOf, toDate, utcTime } from './format'

describe('times', () => {
  it('writes UTC for the hover title', () => {
    expect(utcTime('2026-12-06T00:20:58.123Z')).toBe('2026-12-06 00:20:58.123 UTC')
    expect(utcTime(1_796_516_458)).toBe('2026-12-06 00:20:58.000 UTC')
    expect(utcTime(null)).toBe('')
    expect(utcTime('not a time')).toBe('')
  })

  it('writes local time in the viewer zone, without the date for today', () => {
    // Built from local fields, so it holds in whatever zone the test runs.
    const at = new Date(2026, 11, 6, 1, 2, 3) // local
    expect(localTime(at.toISOString(), new Date(2026, 11, 6, 23, 0, 0))).toBe('01:02:03')
    expect(localTime(at.toISOString(), new Date(2026, 11, 7, 0, 0, 1))).toBe('2026-12-06 01:02:03')
    expect(localTime(undefined)).toBe('—')
  })

  it('writes chart ticks 24-hour, with seconds or the date when the spacing asks for them', () => {
    const at = (h: number, m: number, sec = 0, day = 6) => new Date(2026, 11, day, h, m, sec).getTime() / 1000
    expect(clock(at(14, 5), [at(14, 5), at(14, 10)])).toBe('14:05')
    expect(clock(at(14, 5, 30), [at(14, 5, 0), at(14, 5, 30)])).toBe('14:05:30')
    expect(clock(at(0, 0, 0, 7), [at(0, 0, 0, 7), at(6, 0, 0, 7)])).toBe('12-07')
    expect(clock(at(6, 0), [at(0, 0), at(6, 0)])).toBe('06:00')
  })

  it('reads unix seconds and RFC 3339 alike', () => {
    expect(toDate(0)?.toISOString()).toBe('1970-01-01T00:00:00.000Z')
    expect(toDate('2026-12-06T00:00:00Z')?.getTime()).toBe(Date.UTC(2026, 11, 6))
    expect(toDate('')).toBeNull()
  })

  it('turns a local datetime input into UTC', () => {
    const v = '2026-12-06T01:30'
    expect(localInputToRFC3339(v)).toBe(new Date(2026, 11, 6, 1, 30).toISOString())
    expect(localInputToRFC3339('')).toBe('')
    expect(localInputToRFC3339('garbage')).toBe('')
  })
})

describe('numbers', () => {
  it('writes durations and ratios', () => {
    expect(duration(3725)).toBe('1h 2m')
    expect(duration(65)).toBe('1m 5s')
    expect(duration(4)).toBe('4s')
    expect(duration(-1)).toBe('—')
    expect(percent(1, 3)).toBe('33.3%')
    expect(percent(0, 0)).toBe('—')
  })
})

describe('recipients', () => {
  it('shows the revealed recipient over the masked one', () => {
    const v = { recipient: '+44•••••••23' }
    expect(recipientOf(v)).toBe('+44•••••••23')
    expect(recipientOf(v, { recipient: '+447700900123' })).toBe('+447700900123')
    expect(recipientOf({ recipient: '+44•••••••23', email: 'a•••@example.com' })).toBe('+44•••••••23 · a•••@example.com')
    expect(recipientOf({})).toBe('—')
  })
})
