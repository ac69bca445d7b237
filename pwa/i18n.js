// UI strings in the three languages, the current locale and locale-aware formatting.
// Content (names, descriptions, stories) comes from the API in the requested locale.

export const LOCALES = ["zh-CN", "zh-HK", "en"];
const KEY = "sq.locale";
const TZ = "Asia/Shanghai";

const S = {
  "zh-CN": {
    settings: "设置", popularTimes: "热门时段", bestHours: "最佳时段 {range}", bestGone: "今天的最佳时段已过",
    liveNow: "现在 {pct}", calmerNearby: "附近更空的地方", showAllOffers: "查看全部 {n} 个优惠", showAllN: "查看全部{what}（{n}）",
    seeAll: "查看全部", backToResults: "返回搜索结果",
    quietHours: "免打扰：{from}–{to} 只发送紧急提醒。", noQuietHours: "通知全天都可能送达。",
    followed: "关注的商圈", noFollowed: "还没有关注商圈。在商圈页面点 ♡ 收藏即可关注。",
    clearData: "清除本机数据", clearDataHint: "删除这台设备上的收藏、已读记录、通知设置、语言和已保存的内容，并关闭推送通知。",
    clearDataButton: "清除我的数据", clearDataConfirm: "确定要清除这台设备上的全部商圈数据吗？", dataCleared: "已清除本机数据",
    claim: "领取", claimed: "已领取，可在“我的券”查看", claimedShort: "已领取", soldOut: "已领完", myCoupons: "我的券",
    noCoupons: "还没有券。在商户页面的优惠上点“领取”，券会保存在这台设备上，离线也能出示。", showAtCounter: "结账时出示二维码或券码",
    couponClaimed: "可使用", couponRedeemed: "已核销", couponExpired: "已过期", expiresAt: "{date} 前有效", viewCoupons: "查看",
    notFoundHint: "链接可能有误，或者这个页面已经不在了。", offlineSaved: "离线中 · 正在显示已保存的内容",
    app: "商圈", appLong: "深圳商圈指南", skip: "跳到主要内容", back: "返回", search: "搜索", language: "语言",
    mainNav: "主导航", navHome: "首页", navMerchants: "商户", navGifts: "手信", navFestivals: "活动", navFavourites: "收藏",
    hello: "逛深圳，从商圈开始", searchBox: "搜索商户、手信、商圈", searchLabel: "搜索",
    searchHint: "支持汉字、繁体、拼音和首字母，例如 “hqb”、“华强北”、“茶”。",
    districts: "商圈", pickDistrict: "选一个商圈", areasCount: "{n} 个区域", merchantsCount: "{n} 家商户",
    onNow: "正在进行", endingSoon: "即将结束的优惠", noEndingSoon: "未来三天内没有即将结束的优惠。",
    ends: "{rel}结束", areas: "区域", offers: "优惠", events: "节庆活动", merchants: "商户", upcomingShort: "即将开始",
    capacity: "可容纳约 {n} 人", allOffers: "全部优惠",
    openNow: "营业中", closed: "休息中", closesAt: "{time} 打烊", opensLater: "今日稍后营业", hasOffer: "有优惠", nearMe: "附近",
    category: "分类", allCategories: "全部分类", district: "商圈", allDistricts: "全部商圈", filters: "筛选",
    locating: "正在获取位置…", locationFailed: "无法获取你的位置，请检查定位权限。", nearNone: "附近 5 公里内没有符合条件的商户。",
    found: "{n} 家商户", loadMore: "加载更多", loadingMore: "正在加载…", noMerchants: "没有符合条件的商户。", away: "距你 {d}",
    hours: "营业时间", today: "今天", dayClosed: "休息", call: "拨打电话", amap: "高德地图", appleMaps: "Apple 地图",
    directions: "导航", address: "地址", coupon: "券码", copy: "复制", copied: "已复制券码", validUntil: "有效期至 {date}",
    minSpend: "满 {amount} 可用", stock: "剩余 {n} 份", giftsHere: "本店有售的深圳手信", save: "收藏", saved: "已收藏",
    savedToast: "已加入收藏", removedToast: "已取消收藏", priceLevel: "价位", inDistrict: "{name}",
    gifts: "深圳手信", giftsIntro: "带得走的深圳：老字号、地方风味和新派文创。", all: "全部", whereToBuy: "哪里买",
    readStory: "展开故事", hideStory: "收起",
    festivals: "节庆活动", current: "正在进行", upcoming: "即将开始", noFestivals: "暂时没有活动。", festivalOffers: "活动优惠",
    days: "{n} 天",
    resultsMerchants: "商户", resultsProducts: "手信", resultsDistricts: "商圈", noMatches: "没有找到“{q}”的结果。",
    favourites: "我的收藏", noFavourites: "还没有收藏。在商户或商圈页面点 ♡ 收藏，离线也能看到。",
    offline: "离线中", offlineEmpty: "离线中，这个页面还没有保存过。联网后再打开一次即可离线使用。",
    online: "已恢复联网", retry: "重试", error: "加载失败，请稍后重试。", notFound: "找不到这个页面。",
    updateReady: "有新版本可用", reload: "刷新",
    k_SHOPPING: "购物", k_FOOD: "美食", k_JEWELLERY: "珠宝", k_AUTO: "汽车", k_CULTURE: "文化",
    o_GIFT: "赠品", o_BUNDLE: "套餐",
    c_food: "食品", c_snacks: "零食", c_tea: "茶", c_craft: "手工艺", c_art: "艺术", c_souvenir: "纪念品", c_fashion: "服饰",
    c_jewellery: "珠宝",
    d_mon: "周一", d_tue: "周二", d_wed: "周三", d_thu: "周四", d_fri: "周五", d_sat: "周六", d_sun: "周日",
    crowdNow: "人流", lv_QUIET: "人少", lv_MODERATE: "适中", lv_BUSY: "较挤", lv_PACKED: "拥挤", lv_NONE: "暂无数据",
    noData: "暂无数据", staleMark: "可能过时", updatedJust: "刚刚更新", updatedMin: "{n} 分钟前更新",
    updatedHour: "{n} 小时前更新", updatedOn: "{date} 更新", sourceLine: "来源：{src}", sensorsOne: "1 个传感器",
    sensorsN: "{n} 个传感器", confidence: "可信度{c}", confHigh: "高", confMid: "中", confLow: "低",
    src_people_counter: "客流计数器", src_gate_counter: "闸机计数", src_camera: "摄像头", src_manual: "人工统计",
    forecastLabel: "未来 12 小时：{peak}", busiestAt: "预计 {time} 最挤（{pct}）", noForecast: "暂无预测",
    shopsHere: "本区商户",
    inbox: "消息", inboxTitle: "消息中心", unread: "{n} 条未读", noMessages: "暂时没有消息。", markRead: "标为已读",
    markAllRead: "全部已读", open: "查看", isNew: "新", newMessage: "新消息：{title}", notifSettings: "通知设置", topicsLabel: "消息类型",
    t_FESTIVALS: "节庆活动", t_OFFERS: "优惠", t_CROWD_ALERTS: "人流提醒", pickOne: "请至少选择一个商圈和一种消息类型。",
    turnOn: "开启通知", turningOn: "正在开启…", pushOn: "通知已开启。", pushDenied: "你没有允许通知。新消息仍会出现在这里。",
    pushUnsupported: "你手机的浏览器在这里无法接收推送；新消息仍会出现在这个消息中心。",
    iosHint: "在 iPhone 上，请先点 Safari 的“分享”按钮，选择“添加到主屏幕”，再从主屏幕打开商圈开启通知。",
    settingsSaved: "已保存设置", justNow: "刚刚",
  },
  "zh-HK": {
    settings: "設定", popularTimes: "熱門時段", bestHours: "最佳時段 {range}", bestGone: "今日的最佳時段已過",
    liveNow: "而家 {pct}", calmerNearby: "附近較少人的地方", showAllOffers: "查看全部 {n} 個優惠", showAllN: "查看全部{what}（{n}）",
    seeAll: "查看全部", backToResults: "返回搜尋結果",
    quietHours: "免打擾：{from}–{to} 只發送緊急提示。", noQuietHours: "通知全日都可能送達。",
    followed: "關注的商圈", noFollowed: "仲未關注商圈。喺商圈頁面撳 ♡ 收藏就會關注。",
    clearData: "清除本機資料", clearDataHint: "刪除這部裝置上的收藏、已讀記錄、通知設定、語言和已儲存的內容，並關閉推送通知。",
    clearDataButton: "清除我的資料", clearDataConfirm: "確定要清除這部裝置上的全部商圈資料嗎？", dataCleared: "已清除本機資料",
    claim: "領取", claimed: "已領取，可在「我的券」查看", claimedShort: "已領取", soldOut: "已領完", myCoupons: "我的券",
    noCoupons: "還沒有券。在商戶頁面的優惠上點「領取」，券會保存在這部裝置上，離線也能出示。", showAtCounter: "結帳時出示二維碼或券碼",
    couponClaimed: "可使用", couponRedeemed: "已核銷", couponExpired: "已過期", expiresAt: "{date} 前有效", viewCoupons: "查看",
    notFoundHint: "連結可能有誤，或者這個頁面已經不在了。", offlineSaved: "離線中 · 正在顯示已儲存的內容",
    app: "商圈", appLong: "深圳商圈指南", skip: "跳到主要內容", back: "返回", search: "搜尋", language: "語言",
    mainNav: "主導航", navHome: "首頁", navMerchants: "商戶", navGifts: "手信", navFestivals: "活動", navFavourites: "收藏",
    hello: "逛深圳，從商圈開始", searchBox: "搜尋商戶、手信、商圈", searchLabel: "搜尋",
    searchHint: "支援漢字、簡體、拼音和首字母，例如「hqb」、「華強北」、「茶」。",
    districts: "商圈", pickDistrict: "揀一個商圈", areasCount: "{n} 個區域", merchantsCount: "{n} 間商戶",
    onNow: "正在進行", endingSoon: "即將結束的優惠", noEndingSoon: "未來三日內沒有即將結束的優惠。",
    ends: "{rel}結束", areas: "區域", offers: "優惠", events: "節慶活動", merchants: "商戶", upcomingShort: "即將開始",
    capacity: "可容納約 {n} 人", allOffers: "全部優惠",
    openNow: "營業中", closed: "休息中", closesAt: "{time} 關門", opensLater: "今日稍後營業", hasOffer: "有優惠", nearMe: "附近",
    category: "分類", allCategories: "全部分類", district: "商圈", allDistricts: "全部商圈", filters: "篩選",
    locating: "正在取得位置…", locationFailed: "無法取得你的位置，請檢查定位權限。", nearNone: "附近 5 公里內沒有符合條件的商戶。",
    found: "{n} 間商戶", loadMore: "載入更多", loadingMore: "載入中…", noMerchants: "沒有符合條件的商戶。", away: "距離 {d}",
    hours: "營業時間", today: "今日", dayClosed: "休息", call: "致電", amap: "高德地圖", appleMaps: "Apple 地圖",
    directions: "導航", address: "地址", coupon: "優惠碼", copy: "複製", copied: "已複製優惠碼", validUntil: "有效期至 {date}",
    minSpend: "滿 {amount} 可用", stock: "尚餘 {n} 份", giftsHere: "本店有售的深圳手信", save: "收藏", saved: "已收藏",
    savedToast: "已加入收藏", removedToast: "已取消收藏", priceLevel: "價位", inDistrict: "{name}",
    gifts: "深圳手信", giftsIntro: "帶得走的深圳：老字號、地道風味和新派文創。", all: "全部", whereToBuy: "邊度買",
    readStory: "展開故事", hideStory: "收起",
    festivals: "節慶活動", current: "正在進行", upcoming: "即將開始", noFestivals: "暫時沒有活動。", festivalOffers: "活動優惠",
    days: "{n} 日",
    resultsMerchants: "商戶", resultsProducts: "手信", resultsDistricts: "商圈", noMatches: "找不到「{q}」的結果。",
    favourites: "我的收藏", noFavourites: "仲未有收藏。喺商戶或商圈頁面撳 ♡ 收藏，離線都睇到。",
    offline: "離線中", offlineEmpty: "離線中，這個頁面未曾儲存。連網後再開一次即可離線使用。",
    online: "已恢復連網", retry: "重試", error: "載入失敗，請稍後再試。", notFound: "找不到這個頁面。",
    updateReady: "有新版本可用", reload: "重新載入",
    k_SHOPPING: "購物", k_FOOD: "美食", k_JEWELLERY: "珠寶", k_AUTO: "汽車", k_CULTURE: "文化",
    o_GIFT: "贈品", o_BUNDLE: "套餐",
    c_food: "食品", c_snacks: "零食", c_tea: "茶", c_craft: "手工藝", c_art: "藝術", c_souvenir: "紀念品", c_fashion: "服飾",
    c_jewellery: "珠寶",
    d_mon: "週一", d_tue: "週二", d_wed: "週三", d_thu: "週四", d_fri: "週五", d_sat: "週六", d_sun: "週日",
    crowdNow: "人流", lv_QUIET: "人少", lv_MODERATE: "適中", lv_BUSY: "較擠", lv_PACKED: "擠迫", lv_NONE: "暫無數據",
    noData: "暫無數據", staleMark: "可能過時", updatedJust: "啱啱更新", updatedMin: "{n} 分鐘前更新",
    updatedHour: "{n} 小時前更新", updatedOn: "{date} 更新", sourceLine: "來源：{src}", sensorsOne: "1 個感應器",
    sensorsN: "{n} 個感應器", confidence: "可信度{c}", confHigh: "高", confMid: "中", confLow: "低",
    src_people_counter: "人流計數器", src_gate_counter: "閘機計數", src_camera: "鏡頭", src_manual: "人手統計",
    forecastLabel: "未來 12 小時：{peak}", busiestAt: "預計 {time} 最擠（{pct}）", noForecast: "暫無預測",
    shopsHere: "區內商戶",
    inbox: "訊息", inboxTitle: "訊息中心", unread: "{n} 則未讀", noMessages: "暫時沒有訊息。", markRead: "標為已讀",
    markAllRead: "全部已讀", open: "查看", isNew: "新", newMessage: "新訊息：{title}", notifSettings: "通知設定", topicsLabel: "訊息類型",
    t_FESTIVALS: "節慶活動", t_OFFERS: "優惠", t_CROWD_ALERTS: "人流提示", pickOne: "請至少選擇一個商圈和一種訊息類型。",
    turnOn: "開啟通知", turningOn: "正在開啟…", pushOn: "通知已開啟。", pushDenied: "你沒有允許通知。新訊息仍會出現在這裡。",
    pushUnsupported: "你手機的瀏覽器在這裡無法接收推送；新訊息仍會出現在這個訊息中心。",
    iosHint: "在 iPhone 上，請先點 Safari 的「分享」按鈕，選擇「加至主畫面」，再從主畫面打開商圈開啟通知。",
    settingsSaved: "已儲存設定", justNow: "剛剛",
  },
  en: {
    settings: "Settings", popularTimes: "Popular times", bestHours: "Best time {range}", bestGone: "Today's best time has passed",
    liveNow: "now {pct}", calmerNearby: "Calmer places nearby", showAllOffers: "Show all {n} offers", showAllN: "Show all {what} ({n})",
    seeAll: "See all", backToResults: "Back to results",
    quietHours: "Quiet hours: {from}–{to}, only urgent alerts are sent.", noQuietHours: "Notifications may arrive at any hour.",
    followed: "Followed districts", noFollowed: "No districts followed yet. Tap ♡ on a district to follow it.",
    clearData: "Clear my data on this device",
    clearDataHint: "Deletes this device's saved places, read messages, notification settings, language and saved pages, and turns push notifications off.",
    clearDataButton: "Clear my data", clearDataConfirm: "Clear all Shangquan data on this device?", dataCleared: "Data on this device cleared",
    claim: "Claim", claimed: "Claimed: find it in My coupons", claimedShort: "Claimed", soldOut: "All claimed", myCoupons: "My coupons",
    noCoupons: "No coupons yet. Tap “Claim” on a shop's offer: the coupon is kept on this device and shows offline too.",
    showAtCounter: "Show the QR code or the code at the till", couponClaimed: "Ready to use", couponRedeemed: "Redeemed",
    couponExpired: "Expired", expiresAt: "Valid until {date}", viewCoupons: "View",
    notFoundHint: "The link may be wrong, or the page is gone.", offlineSaved: "Offline · showing saved content",
    app: "Shangquan", appLong: "Shenzhen shopping districts", skip: "Skip to content", back: "Back", search: "Search",
    language: "Language", mainNav: "Main", navHome: "Home", navMerchants: "Shops", navGifts: "Gifts", navFestivals: "Events",
    navFavourites: "Saved",
    hello: "Explore Shenzhen, district by district", searchBox: "Search shops, gifts, districts", searchLabel: "Search",
    searchHint: "Chinese characters, pinyin or initials all work — try “hqb”, “华强北” or “tea”.",
    districts: "Districts", pickDistrict: "Pick a district", areasCount: "{n} areas", merchantsCount: "{n} shops",
    onNow: "On now", endingSoon: "Offers ending soon", noEndingSoon: "No offers end in the next three days.",
    ends: "ends {rel}", areas: "Areas", offers: "Offers", events: "Festivals & events", merchants: "Shops",
    upcomingShort: "Coming up", capacity: "Holds about {n} people", allOffers: "All offers",
    openNow: "Open now", closed: "Closed", closesAt: "closes {time}", opensLater: "Opens later today", hasOffer: "Has offer",
    nearMe: "Near me", category: "Category", allCategories: "All categories", district: "District",
    allDistricts: "All districts", filters: "Filters",
    locating: "Finding your location…", locationFailed: "Couldn't get your location — check the location permission.",
    nearNone: "No matching shops within 5 km.",
    found: "{n} shops", loadMore: "Load more", loadingMore: "Loading…", noMerchants: "No shops match these filters.",
    away: "{d} away",
    hours: "Opening hours", today: "Today", dayClosed: "Closed", call: "Call", amap: "AMap", appleMaps: "Apple Maps",
    directions: "Directions", address: "Address", coupon: "Coupon code", copy: "Copy", copied: "Coupon code copied",
    validUntil: "Valid until {date}", minSpend: "Min. spend {amount}", stock: "{n} left", giftsHere: "Shenzhen gifts sold here",
    save: "Save", saved: "Saved", savedToast: "Saved to this device", removedToast: "Removed from saved",
    priceLevel: "Price level", inDistrict: "{name}",
    gifts: "Shenzhen gifts", giftsIntro: "Shenzhen to take home: time-honoured brands, local flavours and new design.",
    all: "All", whereToBuy: "Where to buy", readStory: "Read the story", hideStory: "Show less",
    festivals: "Festivals & events", current: "On now", upcoming: "Coming up", noFestivals: "Nothing scheduled right now.",
    festivalOffers: "Festival offers", days: "{n} days",
    resultsMerchants: "Shops", resultsProducts: "Gifts", resultsDistricts: "Districts", noMatches: "Nothing found for “{q}”.",
    favourites: "Saved", noFavourites: "Nothing saved yet. Tap ♡ on a shop or district to keep it here, even offline.",
    offline: "Offline", offlineEmpty: "You're offline and this page hasn't been saved yet. Open it once online to keep it.",
    online: "Back online", retry: "Retry", error: "Couldn't load this. Please try again.", notFound: "This page doesn't exist.",
    updateReady: "A new version is available", reload: "Reload",
    k_SHOPPING: "Shopping", k_FOOD: "Food", k_JEWELLERY: "Jewellery", k_AUTO: "Auto", k_CULTURE: "Culture",
    o_GIFT: "Gift", o_BUNDLE: "Bundle",
    c_food: "Food", c_snacks: "Snacks", c_tea: "Tea", c_craft: "Crafts", c_art: "Art", c_souvenir: "Souvenirs",
    c_fashion: "Fashion", c_jewellery: "Jewellery",
    d_mon: "Mon", d_tue: "Tue", d_wed: "Wed", d_thu: "Thu", d_fri: "Fri", d_sat: "Sat", d_sun: "Sun",
    crowdNow: "Crowd", lv_QUIET: "Quiet", lv_MODERATE: "Moderate", lv_BUSY: "Busy", lv_PACKED: "Packed", lv_NONE: "No data",
    noData: "No data", staleMark: "may be outdated", updatedJust: "Updated just now", updatedMin: "Updated {n} min ago",
    updatedHour: "Updated {n} h ago", updatedOn: "Updated {date}", sourceLine: "Source: {src}", sensorsOne: "1 sensor",
    sensorsN: "{n} sensors", confidence: "{c} confidence", confHigh: "high", confMid: "medium", confLow: "low",
    src_people_counter: "people counter", src_gate_counter: "gate counter", src_camera: "camera", src_manual: "manual count",
    forecastLabel: "Next 12 hours: {peak}", busiestAt: "busiest at {time} ({pct})", noForecast: "No forecast yet",
    shopsHere: "Shops here",
    inbox: "Inbox", inboxTitle: "Inbox", unread: "{n} unread", noMessages: "No messages yet.", markRead: "Mark read",
    markAllRead: "Mark all read", open: "Open", isNew: "New", newMessage: "New message: {title}", notifSettings: "Notification settings",
    topicsLabel: "Topics", t_FESTIVALS: "Festivals", t_OFFERS: "Offers", t_CROWD_ALERTS: "Crowd alerts",
    pickOne: "Pick at least one district and one topic.", turnOn: "Turn on notifications", turningOn: "Turning on…",
    pushOn: "Notifications are on.", pushDenied: "Notifications were not allowed. New messages still appear in this inbox.",
    pushUnsupported: "Your phone's browser cannot receive push here; new messages still appear in this inbox.",
    iosHint: "On iPhone, first tap Safari's Share button and choose “Add to Home Screen”, then open Shangquan from the Home Screen to turn on notifications.",
    settingsSaved: "Settings saved", justNow: "just now",
  },
};

function stored() {
  try { return localStorage.getItem(KEY); } catch { return null; }
}

/** The language the browser asks for (what a device without a saved choice gets). */
export function fromBrowser() {
  for (const tag of navigator.languages || []) {
    const l = tag.toLowerCase();
    if (l.startsWith("en")) return "en";
    if (/^zh-(hk|mo|tw|hant)/.test(l)) return "zh-HK";
    if (l.startsWith("zh")) return "zh-CN";
  }
  return "zh-CN";
}

export let locale = LOCALES.includes(stored()) ? stored() : fromBrowser();

export function setLocale(next, { remember = true } = {}) {
  if (!LOCALES.includes(next)) return;
  locale = next;
  if (remember) {
    try { localStorage.setItem(KEY, next); } catch { /* private mode: this session only */ }
  }
  applyLocale();
}

/** <html lang>, the localized manifest and every [data-i18n] text of the static shell. */
export function applyLocale() {
  document.documentElement.lang = locale;
  const link = document.getElementById("manifest");
  if (link) link.href = `/app/manifest.${locale}.webmanifest`;
  for (const el of document.querySelectorAll("[data-i18n]")) el.textContent = t(el.dataset.i18n);
  for (const el of document.querySelectorAll("[data-i18n-label]")) el.setAttribute("aria-label", t(el.dataset.i18nLabel));
  for (const b of document.querySelectorAll("[data-lang]")) b.setAttribute("aria-pressed", String(b.dataset.lang === locale));
}

export function t(key, vars) {
  let s = S[locale][key] ?? S["zh-CN"][key] ?? key;
  if (vars) for (const [k, v] of Object.entries(vars)) s = s.replaceAll(`{${k}}`, v);
  return s;
}

export const has = (key) => key in S[locale];

const intlLocale = () => (locale === "en" ? "en-GB" : locale);

/** ¥ from integer fen: ¥128, ¥12.50 */
export function money(fen) {
  const yuan = fen / 100;
  return "¥" + new Intl.NumberFormat(intlLocale(), { minimumFractionDigits: fen % 100 ? 2 : 0, maximumFractionDigits: 2 }).format(yuan);
}

export function priceRange(min, max) {
  return min === max ? money(min) : `${money(min)}–${money(max).slice(1)}`;
}

export function distance(meters) {
  const nf = (unit, digits) => new Intl.NumberFormat(intlLocale(), { style: "unit", unit, maximumFractionDigits: digits });
  return meters < 1000 ? nf("meter", 0).format(Math.round(meters / 10) * 10) : nf("kilometer", 1).format(meters / 1000);
}

/** A Shenzhen-time date and time, e.g. 12月31日 23:59 / 31 Dec, 23:59 */
export function dateTime(iso) {
  const date = new Date(iso);
  const year = (d) => new Intl.DateTimeFormat("en", { timeZone: TZ, year: "numeric" }).format(d);
  return new Intl.DateTimeFormat(intlLocale(), {
    timeZone: TZ, year: year(date) === year(new Date()) ? undefined : "numeric", month: "short", day: "numeric",
    hour: "2-digit", minute: "2-digit", hourCycle: "h23",
  }).format(date);
}

const localDate = (d) => new Date(`${d}T12:00:00Z`);

/** A range of local dates (YYYY-MM-DD), e.g. 11月20日–12月31日 / 20 Nov – 31 Dec */
export function dateRange(start, end) {
  const f = new Intl.DateTimeFormat(intlLocale(), { timeZone: "UTC", month: "short", day: "numeric" });
  const [a, b] = [f.format(localDate(start)), f.format(localDate(end))];
  if (start === end) return a;
  return locale === "en" ? `${a} – ${b}` : `${a}–${b}`;
}

export function monthDay(d) {
  const date = localDate(d);
  return {
    month: new Intl.DateTimeFormat(intlLocale(), { timeZone: "UTC", month: "short" }).format(date),
    day: String(date.getUTCDate()),
  };
}

/** "in 2 days" / "2天后" relative to now, for an ISO time. */
export function relative(iso) {
  const ms = new Date(iso).getTime() - Date.now();
  const rtf = new Intl.RelativeTimeFormat(intlLocale(), { numeric: "auto" });
  const hours = ms / 3600000;
  if (Math.abs(hours) < 24) return rtf.format(Math.max(1, Math.round(hours)), "hour");
  return rtf.format(Math.round(hours / 24), "day");
}

/** "5 minutes ago" / "3小时前" for a past ISO time (days after 24 h, a date after a week). */
export function ago(iso) {
  const min = Math.round((Date.now() - new Date(iso).getTime()) / 60000);
  if (min < 1) return t("justNow");
  const rtf = new Intl.RelativeTimeFormat(intlLocale(), { numeric: "auto" });
  if (min < 60) return rtf.format(-min, "minute");
  if (min < 1440) return rtf.format(-Math.round(min / 60), "hour");
  return min < 10080 ? rtf.format(-Math.round(min / 1440), "day") : dateTime(iso);
}

/** Today's weekday key (mon … sun) in Shenzhen. */
export function todayKey() {
  return new Intl.DateTimeFormat("en-US", { timeZone: TZ, weekday: "short" }).format(new Date()).toLowerCase().slice(0, 3);
}

/** Offer badge text: 8折 / 20% off, 减¥30 / ¥30 off, 赠品 / Gift. */
export function offerBadge(o) {
  if (o.kind === "PERCENT_OFF" && o.percentOff) {
    if (locale === "en") return `${o.percentOff}% off`;
    const rest = 100 - o.percentOff;
    return `${rest % 10 ? rest : rest / 10}折`;
  }
  if (o.kind === "AMOUNT_OFF" && o.amountOffFen) {
    return locale === "en" ? `${money(o.amountOffFen)} off` : `${locale === "zh-HK" ? "減" : "减"}${money(o.amountOffFen)}`;
  }
  return t(`o_${o.kind}`) === `o_${o.kind}` ? t("offers") : t(`o_${o.kind}`);
}

export function categoryLabel(slug) {
  const key = `c_${slug}`;
  return has(key) ? t(key) : slug;
}
