// Mounting a page for a test: a real Vue app on happy-dom's document, with the console's router (in memory),
// and a fetch that answers from a table of routes and records what was asked.
import { createApp, h, nextTick, type Component } from 'vue'
import { createMemoryHistory, createRouter, RouterView } from 'vue-router'
import { vi } from 'vitest'

export interface Asked { method: string; url: string; headers: Record<string, string>; body: unknown }

/** fakeEngine stubs fetch: each route is "METHOD /console/api/path" (query left out) to a status and body. */
export function fakeEngine(routes: Record<string, [number, unknown] | ((a: Asked) => [number, unknown])>): Asked[] {
  const asked: Asked[] = []
  vi.stubGlobal('fetch', async (url: string, init: RequestInit = {}) => {
    const a: Asked = {
      method: init.method ?? 'GET',
      url,
      headers: (init.headers ?? {}) as Record<string, string>,
      body: init.body ? JSON.parse(init.body as string) : undefined,
    }
    asked.push(a)
    const r = routes[`${a.method} ${url.split('?')[0]}`]
    if (!r) return new Response('{"error":{"code":"not_found","message":"no such route in the test"}}', { status: 404 })
    const [status, body] = typeof r === 'function' ? r(a) : r
    return new Response(status === 204 ? null : JSON.stringify(body), { status })
  })
  return asked
}

/** mount renders a component at a path, with routes named as the console's pages. */
export async function mount(page: Component, path = '/', pattern?: string) {
  const el = document.createElement('div')
  document.body.appendChild(el)
  const Stub = { render: () => h('div') }
  const names = ['live', 'verifications', 'trunks', 'pools', 'apps', 'reports', 'audit']
  const router = createRouter({
    history: createMemoryHistory('/console/'),
    routes: [
      ...(pattern ? [{ path: pattern, component: page }] : []),
      { path: '/', name: 'signin', component: page },
      { path: '/verifications/:id', name: 'verification', component: Stub },
      { path: '/apps/:id', name: 'app', component: Stub },
      ...names.map((n) => ({ path: '/' + n, name: n, component: n === path.split('?')[0].slice(1) ? page : Stub })),
    ],
  })
  await router.push(path)
  await router.isReady()
  const app = createApp({ render: () => h(RouterView) })
  app.use(router)
  app.mount(el)
  await settle()
  return {
    el,
    router,
    unmount: () => {
      app.unmount()
      el.remove()
    },
  }
}

/** settle lets fetches resolve and Vue re-render. */
export async function settle() {
  for (let i = 0; i < 5; i++) {
    await new Promise((r) => setTimeout(r, 0))
    await nextTick()
  }
}

/** byTestId finds the elements of a data-testid. */
export const byTestId = (el: Element, id: string) => Array.from(el.querySelectorAll<HTMLElement>(`[data-testid="${id}"]`))

/** type sets an input's value as a person would. */
export function type(input: HTMLElement, value: string) {
  ;(input as HTMLInputElement).value = value
  input.dispatchEvent(new Event('input'))
}
