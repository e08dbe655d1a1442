import { describe, expect, it } from 'vitest'
import { parseJSON, splitList } from './lists'

describe('form lists', () => {
  it('splits by commas, spaces and lines', () => {
    expect(splitList(' GB, US\nFR  ,,')).toEqual(['GB', 'US', 'FR'])
    expect(splitList('')).toEqual([])
  })
  it('reads JSON, naming the field when it is not', () => {
    expect(parseJSON('workflow', '[{"channel":"sms"}]')).toEqual([{ channel: 'sms' }])
    expect(parseJSON('workflow', '  ')).toBeUndefined()
    expect(() => parseJSON('templates', '{sms:')).toThrow(/^templates: not JSON/)
  })
})
