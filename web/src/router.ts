import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import Overview from './pages/OverviewPage.vue'
import { documentTitle } from './lib/title'

// Pages other than the first load on demand (the initial JS stays small).
export const routes: RouteRecordRaw[] = [
  { path: '/', name: 'overview', component: Overview, meta: { title: 'Overview' } },
  { path: '/trade', name: 'trade', component: () => import('./pages/TradePage.vue'), meta: { title: 'Trade' } },
  { path: '/orders', name: 'orders', component: () => import('./pages/OrdersPage.vue'), meta: { title: 'Orders & fills' } },
  { path: '/risk', name: 'risk', component: () => import('./pages/RiskPage.vue'), meta: { title: 'Risk' } },
  { path: '/backtest', name: 'backtest', component: () => import('./pages/BacktestPage.vue'), meta: { title: 'Backtest' } },
  // The strategy runner's page: in the navigation only when the gateway has its routes
  // (lib/features.ts); the page says so itself if reached without them.
  { path: '/runners', name: 'runners', component: () => import('./pages/RunnersPage.vue'), meta: { title: 'Runners', feature: 'runners' } },
  { path: '/activity', name: 'activity', component: () => import('./pages/ActivityPage.vue'), meta: { title: 'Activity' } },
  { path: '/about', name: 'about', component: () => import('./pages/AboutPage.vue'), meta: { title: 'About' } },
  { path: '/:unknown(.*)*', redirect: '/' },
]

export const NAV = routes.filter((route) => route.meta?.title)

export const router = createRouter({ history: createWebHistory(), routes })

// The tab's title from the page's route meta, in this one place.
router.afterEach((to) => {
  document.title = documentTitle(to.meta.title)
})
