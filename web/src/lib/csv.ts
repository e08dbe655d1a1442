// Links the Reports page builds: the same query as the table, as a CSV download.
import { url } from './api'

export interface ReportQuery {
  app_id?: string
  group_by: 'day' | 'country' | 'channel' | 'trunk'
  since?: string
  until?: string
}

/** reportQuery keeps only what the route takes, empty values left out. */
export function reportQuery(q: ReportQuery, format: 'json' | 'csv'): Record<string, string> {
  const out: Record<string, string> = { group_by: q.group_by, format }
  if (q.app_id) out.app_id = q.app_id
  if (q.since) out.since = q.since
  if (q.until) out.until = q.until
  return out
}

/** csvLink is the href of the CSV export: a same-origin GET the session cookie authorizes. */
export function csvLink(q: ReportQuery): string {
  return url('/reports', reportQuery(q, 'csv'))
}
