// Cursor paging as the API does it: next_cursor forward, a stack of the cursors seen to go back.

/** Pager remembers the cursors of the pages before the current one. */
export class Pager {
  private stack: string[] = []
  cursor = ''

  /** next moves to the page after the current one. */
  next(nextCursor: string): void {
    if (!nextCursor) return
    this.stack.push(this.cursor)
    this.cursor = nextCursor
  }

  /** prev moves back one page; false on the first. */
  prev(): boolean {
    if (!this.stack.length) return false
    this.cursor = this.stack.pop()!
    return true
  }

  /** reset goes back to the first page (new filters). */
  reset(): void {
    this.stack = []
    this.cursor = ''
  }

  get page(): number {
    return this.stack.length + 1
  }
}
