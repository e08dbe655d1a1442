// Reading the comma- or space-separated lists of the forms ("GB, US", "+44207946XXXX +44207947XXXX").

/** splitList reads a list typed in one field: separated by commas, spaces or new lines, empties dropped. */
export function splitList(s: string): string[] {
  return s
    .split(/[\s,]+/)
    .map((x) => x.trim())
    .filter(Boolean)
}

/** parseJSON reads a JSON field of a form, naming the field when it is not JSON. */
export function parseJSON(field: string, text: string): unknown {
  if (!text.trim()) return undefined
  try {
    return JSON.parse(text)
  } catch (e) {
    throw new Error(`${field}: not JSON (${e instanceof Error ? e.message : String(e)})`)
  }
}
