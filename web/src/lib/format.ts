// How times, numbers and recipients are written for people: the viewer's time zone, UTC on hover.

const pad = (n: number) => String(n).padStart(2, '0')

/** toDate reads an RFC 3339 string or unix seconds; null for nothing or garbage. */
export function toDate(v: string | number | null | undefined): Date | null {
  if (v === null || v === undefined || v === '') return null
  const d = typeof v === 'number' ? new Date(v * 1000) : new Date(v)
  return isNaN(d.getTime()) ? null : d
}

/** localTime writes a time in the viewer's time zone: "2026-12-06 01:20:58" (the date left out for today). */
export function localTime(v: string | number | null | undefined, now: Date = new Date()): string {
  const d = toDate(v)
  if (!d) return '—'
  const day = `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}`
  const today = `${now.getFullYear()}-${pad(now.getMonth() + 1)}-${pad(now.getDate())}`
  const time = `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`
  return day === today ? time : `${day} ${time}`
}

/** clock writes a chart's time tick in the viewer's zone, 24-hour: "14:05", with seconds when the ticks are
 * less than a minute apart, and the date at midnight when they are an hour or more apart. */
export function clock(t: number, ticks: number[]): string {
  const d = new Date(t * 1000)
  const step = ticks.length > 1 ? Math.abs(ticks[1] - ticks[0]) : 60
  const hm = `${pad(d.getHours())}:${pad(d.getMinutes())}`
  if (step < 60) return `${hm}:${pad(d.getSeconds())}`
  if (step >= 3600 && d.getHours() === 0 && d.getMinutes() === 0) return `${pad(d.getMonth() + 1)}-${pad(d.getDate())}`
  return hm
}

/** utcTime writes a time in UTC for the title on hover: "2026-12-06 00:20:58.123 UTC". */
export function utcTime(v: string | number | null | undefined): string {
  const d = toDate(v)
  if (!d) return ''
  return d.toISOString().replace('T', ' ').replace('Z', ' UTC')
}

/** duration writes seconds as "1h 2m", "3m 4s", "5s". */
export function duration(seconds: number): string {
  if (!isFinite(seconds) || seconds < 0) return '—'
  const s = Math.floor(seconds)
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  if (h > 0) return `${h}h ${m}m`
  if (m > 0) return `${m}m ${s % 60}s`
  return `${s}s`
}

/** percent writes a ratio (0..1) as "42.5%", and "—" when there was nothing to divide. */
export function percent(part: number, whole: number): string {
  if (!whole) return '—'
  return (Math.round((part / whole) * 1000) / 10).toFixed(1) + '%'
}

/** ms writes a number of milliseconds, "—" for null. */
export function ms(v: number | null | undefined): string {
  return v === null || v === undefined ? '—' : `${Math.round(v)} ms`
}

/** isMasked says whether a recipient as the engine gave it hides digits or letters. */
export function isMasked(s: string | undefined | null): boolean {
  return !!s && s.includes('•')
}

/** recipientOf is what a verification's row shows: the revealed number or address if any, else the masked
 * one the engine sent, the email beside the number when the verification has both. */
export function recipientOf(v: { recipient?: string; email?: string }, revealed?: { recipient?: string; email?: string }): string {
  const r = revealed?.recipient || v.recipient || ''
  const e = revealed?.email || v.email || ''
  if (r && e && r !== e) return `${r} · ${e}`
  return r || e || '—'
}

/** localInputToRFC3339 turns a <input type="datetime-local"> value (the viewer's zone) into RFC 3339 UTC. */
export function localInputToRFC3339(v: string): string {
  if (!v) return ''
  const d = new Date(v)
  return isNaN(d.getTime()) ? '' : d.toISOString()
}
