import { createApp } from 'vue'
import App from './App.vue'
import { router } from './router'
import { setTheme, store } from './lib/store'
import './style.css'

setTheme(store.theme)
createApp(App).use(router).mount('#app')
