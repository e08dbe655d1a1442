import { describe, expect, it } from 'vitest'
import { csvLink, reportQuery } from './csv'

describe('report links', () => {
  it('builds a same-origin CSV link with only what was chosen', () => {
    expect(csvLink({ group_by: 'day' })).toBe('/console/api/reports?group_by=day&format=csv')
    const link = csvLink({ group_by: 'country', app_id: 'shop & co', since: '2026-12-01', until: '2026-12-06' })
    expect(link.startsWith('/console/api/reports?')).toBe(true)
    const q = new URLSearchParams(link.split('?')[1])
    expect(Object.fromEntries(q)).toEqual({ group_by: 'country', format: 'csv', app_id: 'shop & co', since: '2026-12-01', until: '2026-12-06' })
  })

  it('asks for JSON for the table', () => {
    expect(reportQuery({ group_by: 'trunk', app_id: '' }, 'json')).toEqual({ group_by: 'trunk', format: 'json' })
  })
})
