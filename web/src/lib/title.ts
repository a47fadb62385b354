// Each page names its browser tab (route meta title), so several tabs tell apart.
export const APP_NAME = 'EdgeQuant'

/** "Orders & fills · EdgeQuant"; the app's name alone for a route without a title. */
export function documentTitle(pageTitle: unknown): string {
  return typeof pageTitle === 'string' && pageTitle ? `${pageTitle} · ${APP_NAME}` : APP_NAME
}
