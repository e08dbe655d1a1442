import { describe, expect, it } from 'vitest'
import { Pager } from './paging'

describe('Pager', () => {
  it('walks forward by next_cursor and back by the cursors seen', () => {
    const p = new Pager()
    expect(p.cursor).toBe('')
    p.next('c2')
    p.next('c3')
    expect([p.page, p.cursor]).toEqual([3, 'c3'])
    p.next('') // the last page: no further
    expect([p.page, p.cursor]).toEqual([3, 'c3'])
    expect(p.prev()).toBe(true)
    expect(p.cursor).toBe('c2')
    expect(p.prev()).toBe(true)
    expect(p.cursor).toBe('')
    expect(p.prev()).toBe(false)
    p.next('x')
    p.reset()
    expect([p.page, p.cursor]).toEqual([1, ''])
  })
})
