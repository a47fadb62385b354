import { api } from './api'
import { store } from './store'

export interface Account {
  accountId: string
  venue: string
  kind: string
  quoteCurrency: string
}

let cached: Promise<Account[]> | null = null

/** The portfolio's accounts (ListAccounts), once per session; sets the default account. */
export function accounts(): Promise<Account[]> {
  cached ??= api.get<{ accounts: Account[] }>('/v1/accounts').then((answer) => {
    const list = answer.accounts ?? []
    const first = list.find((each) => each.accountId === store.account) ?? list[0]
    if (first) {
      store.account = first.accountId
      store.venue = first.venue
    }
    return list
  })
  cached.catch(() => (cached = null))
  return cached
}
