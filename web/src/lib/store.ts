import { reactive } from 'vue'
import { api, forgetToken, storedToken, storeToken, whenUnauthorized } from './api'
import type { WhoAmI } from './scopes'
import type { Zone } from './time'

export interface Health {
  status: string
  services: Record<string, string>
}

export interface TradingStateInfo {
  state: string
  reason: string
  updatedBy: string
  updateTime?: string
  accountId: string
}

export const store = reactive({
  who: null as WhoAmI | null,
  loginError: '',
  zone: (localStorage.getItem('edgequant.zone') as Zone) || 'utc',
  theme: localStorage.getItem('edgequant.theme') || 'light',
  health: null as Health | null,
  trading: null as TradingStateInfo | null,
  /** Each venue account's own kill switch (GetTradingState's accounts), kept live. */
  accountStates: [] as TradingStateInfo[],
  venue: 'paper',
  account: 'paper',
})

export function setZone(zone: Zone): void {
  store.zone = zone
  localStorage.setItem('edgequant.zone', zone)
}

export function setTheme(theme: string): void {
  store.theme = theme
  localStorage.setItem('edgequant.theme', theme)
  document.documentElement.dataset.theme = theme
}

/** Who the stored token is (GET /v1/whoami); null when there is none or it is refused. */
export async function identify(): Promise<WhoAmI | null> {
  if (!storedToken()) return null
  try {
    store.who = await api.get<WhoAmI>('/v1/whoami')
  } catch (error) {
    store.who = null
    store.loginError = error instanceof Error ? error.message : String(error)
  }
  return store.who
}

export async function logIn(token: string, remember: boolean): Promise<boolean> {
  storeToken(token.trim(), remember)
  store.loginError = ''
  const who = await identify()
  if (!who) forgetToken()
  return who !== null
}

export function logOut(): void {
  forgetToken()
  store.who = null
}

whenUnauthorized(() => {
  store.who = null
  store.loginError = 'the token was refused (expired or removed); log in again'
})
