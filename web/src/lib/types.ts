// The shapes of the console API's answers (CONSOLE17.md, docs/api.md), as far as the pages read them.

export interface ChannelCounts { sent: number; delivered: number; failed: number }

/** One interval of the engine's activity: counts over the interval, gauges at t, pdd quantiles in seconds. */
export interface Sample {
  t: number
  sends: number
  missed: number
  answered: number
  failed: number
  approved: number
  ended: number
  in_flight: number
  queue: number
  pdd_p50: number | null
  pdd_p99: number | null
  channels: Record<string, ChannelCounts>
  sends_total: number
}

export interface Live {
  now: string
  step_15m: number
  step_24h: number
  m15: Sample[] | null
  h24: Sample[] | null
  trunks: { name: string; up: boolean }[]
}

export interface Step {
  channel: string
  state: string
  reason?: string
  via?: string
  trunk?: string
  sip_code?: number
  code_length?: number
  locale?: string
  encoding?: string
  segments?: number
  timeout?: string
  started_at?: string | null
  sent_at?: string | null
  delivered_at?: string | null
  ended_at?: string | null
}

export interface Verification {
  verification_id: string
  app_id?: string
  appid?: string
  recipient?: string
  email?: string
  channel: string
  status: string
  code_length?: number
  cli_prefix?: string
  dial_number?: string // channel inbound: the number the user calls
  reference?: string
  attempts?: number
  attempts_remaining?: number
  resends?: number
  created_at: string
  expires_at?: string
  call?: {
    state: string
    sip_code: number
    reason: string
    trunk: string
    post_dial_delay_ms: number | null
    started_at: string | null
    ended_at: string | null
  } | null
  steps?: Step[]
}

export interface Page<T> { items: T[]; next_cursor: string }

export interface Event {
  id?: string
  type: string
  at: string
  channel?: string
  step?: number
  trunk?: string
  sip_code?: number
  reason?: string
  result?: string
  remote_ip?: string
  cli_prefix?: string
}

export interface Attempt { verification_id?: string; at: string; result: string; remote_ip?: string }

export interface Delivery {
  at: string
  verification_id?: string
  event: string
  url: string
  status: number
  outcome: string
  try: number
  error?: string
}

export interface Timeline {
  verification: Verification
  events: Event[]
  attempts: Attempt[]
  webhooks: Delivery[]
}

export interface Trunk {
  name: string
  address: string
  transport: string
  up: boolean
  options_rtt_ms: number | null
  last_probe_at: string | null
  last_probe_status: number
  last_probe_error?: string
  in_flight: number
  max_calls: number
  cps: number
  max_cps: number
  calls: { missed: number; answered: number; failed: number }
  failovers: number
  registration?: { registered: boolean; until: string | null; error: string }
}

export interface Entry {
  id: string
  numbers: string[]
  countries?: string[]
  trunks?: string[]
  weight: number
  enabled: boolean
  from_config?: boolean
}

export interface Quarantine {
  until: string
  since: string
  rejections: number
  reason: string
  manual: boolean
  pool: string
  entry: string
  cli?: string
}

export interface PoolReport {
  name: string
  entries: Entry[]
  cooldown: string
  quarantine_for: string
  quarantine_codes: number[]
  quarantine_after: number
  from_config: boolean
  entry_uses: Record<string, number>
  quarantine: Record<string, Quarantine>
}

export interface AppSpace { app: string; code_length: number; pools: string[]; spaces: Record<string, { codes: number; bits: number }> }

export interface PoolsReport { pools: PoolReport[] | null; apps: AppSpace[] | null }

export interface App {
  id: string
  code_length: number
  ttl: string
  max_attempts: number
  resend_cooldown: string
  max_resends: number
  pools: string[]
  allowed_countries: string[]
  blocked_number_types: string[]
  rate_limits: Record<string, { limit: number; window: string }>
  webhook_url: string
  pre_send_hook: { url: string; timeout: string; fail_open: boolean } | null
  channels: string[]
  workflow: { channel: string; timeout?: string }[]
  locale: string
  android_app_hash: string
  templates: Record<string, Record<string, string>>
  code_lengths: Record<string, number>
  from_config: boolean
  created_at: string
  updated_at: string
}

export interface Key {
  key: string
  appid: string
  secret?: string
  from_config: boolean
  created_at: string
  rotated_at?: string
  revoked_at?: string
}

export interface ReportRow {
  key: string
  sent: number
  missed: number
  answered: number
  failed: number
  approved: number
  conversion_rate: number
  p50_post_dial_delay_ms: number | null
}

export interface AuditItem { id: string; at: string; operator: string; role: string; action: string; target: string; ip: string; status: number }
