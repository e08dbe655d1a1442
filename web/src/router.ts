// The console's pages, in history mode under /console/; every page but sign-in needs a session.
import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import { onUnauthorized } from './lib/api'
import { forget, restore, session } from './lib/session'
import SignIn from './pages/SignIn.vue'

const routes: RouteRecordRaw[] = [
  { path: '/', name: 'signin', component: SignIn, meta: { public: true, title: 'Sign in' } },
  { path: '/live', name: 'live', component: () => import('./pages/Live.vue'), meta: { title: 'Live' } },
  { path: '/verifications', name: 'verifications', component: () => import('./pages/Verifications.vue'), meta: { title: 'Verifications' } },
  { path: '/verifications/:id', name: 'verification', component: () => import('./pages/Verification.vue'), meta: { title: 'Verification' } },
  { path: '/trunks', name: 'trunks', component: () => import('./pages/Trunks.vue'), meta: { title: 'Trunks' } },
  { path: '/pools', name: 'pools', component: () => import('./pages/Pools.vue'), meta: { title: 'Pools' } },
  { path: '/apps', name: 'apps', component: () => import('./pages/Apps.vue'), meta: { title: 'Apps and keys' } },
  { path: '/apps/:id', name: 'app', component: () => import('./pages/AppDetail.vue'), meta: { title: 'App' } },
  { path: '/reports', name: 'reports', component: () => import('./pages/Reports.vue'), meta: { title: 'Reports' } },
  { path: '/audit', name: 'audit', component: () => import('./pages/Audit.vue'), meta: { title: 'Audit' } },
  { path: '/:rest(.*)*', name: 'notfound', component: () => import('./pages/NotFound.vue'), meta: { title: 'Not found' } },
]

export const router = createRouter({ history: createWebHistory('/console/'), routes })

/** The message sign-in shows after a call found the session gone. */
export const STALE = 'Your session has ended (signed out elsewhere, or idle too long). Sign in again to go on.'

router.beforeEach(async (to) => {
  if (!session.checked) await restore()
  if (to.meta.public) {
    if (session.operator && to.name === 'signin') {
      const next = typeof to.query.next === 'string' && to.query.next.startsWith('/') ? to.query.next : '/live'
      return next
    }
    return true
  }
  if (!session.operator) return { name: 'signin', query: { next: to.fullPath } }
  return true
})

router.afterEach((to, from) => {
  document.title = `${to.meta.title ?? 'Console'} · flashotp`
  // A new page: keyboard and screen-reader users start at its content, not at the link they pressed.
  if (from.matched.length && to.path !== from.path) setTimeout(() => document.getElementById('main')?.focus({ preventScroll: true }))
})

/** sessionEnded goes back to sign-in saying why, and back to this page after signing in. */
export function sessionEnded(): void {
  if (!session.operator) return
  forget(STALE)
  const here = router.currentRoute.value
  void router.push({ name: 'signin', query: here.name && here.name !== 'signin' ? { next: here.fullPath } : {} })
}

onUnauthorized(sessionEnded)
