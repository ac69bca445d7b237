"""Texts by message key in zh-CN, zh-HK and en, for the back office and GraphQL payload errors.

`translate(key, locale)` is the one entry point (server/api/payloads.py uses it); unknown keys come
back as themselves so a missing text is visible, never a crash.
"""

from __future__ import annotations

from server.domain.i18n import FALLBACKS

MESSAGES: dict[str, dict[str, str]] = {
    "required": {"zh-CN": "必填", "zh-HK": "必填", "en": "Required"},
    "too_long": {"zh-CN": "内容过长", "zh-HK": "內容過長", "en": "Too long"},
    "not_a_number": {"zh-CN": "请输入数字", "zh-HK": "請輸入數字", "en": "Enter a number"},
    "out_of_range": {"zh-CN": "数值超出范围", "zh-HK": "數值超出範圍", "en": "Out of range"},
    "bad_datetime": {"zh-CN": "日期时间格式不正确", "zh-HK": "日期時間格式不正確", "en": "Not a valid date and time"},
    "coupon_format": {"zh-CN": "优惠码只能包含大写字母、数字和 -(4–20 位)",
                      "zh-HK": "優惠碼只能包含大寫字母、數字和 -(4–20 位)",
                      "en": "Use 4–20 capital letters, digits or -"},
    "ends_before_start": {"zh-CN": "结束时间须晚于开始时间", "zh-HK": "結束時間須晚於開始時間",
                          "en": "Must end after it starts"},
    "unknown_festival": {"zh-CN": "没有这个活动", "zh-HK": "沒有這個活動", "en": "No such festival"},
    "festival_elsewhere": {"zh-CN": "该活动不在本商户所在商圈举办", "zh-HK": "該活動不在本商戶所在商圈舉辦",
                           "en": "That festival does not run in this merchant's district"},
    "phone_format": {"zh-CN": "电话号码格式不正确", "zh-HK": "電話號碼格式不正確", "en": "Not a valid phone number"},
    "categories_invalid": {"zh-CN": "请选择 1–5 个有效类别", "zh-HK": "請選擇 1–5 個有效類別",
                           "en": "Choose 1 to 5 valid categories"},
    "hours_format": {"zh-CN": "营业时间格式应为 10:00-22:00(整刻钟)", "zh-HK": "營業時間格式應為 10:00-22:00(整刻鐘)",
                     "en": "Use spans like 10:00-22:00, on the quarter hour"},
    "coordinates_invalid": {"zh-CN": "坐标无效", "zh-HK": "座標無效", "en": "Not valid coordinates"},
    "outside_district": {"zh-CN": "位置不在所属商圈内", "zh-HK": "位置不在所屬商圈內",
                         "en": "The location lies outside the district"},
    "unknown_area": {"zh-CN": "没有这个片区", "zh-HK": "沒有這個片區", "en": "No such area in this district"},
    "slug_format": {"zh-CN": "标识只能用小写字母、数字和 -", "zh-HK": "標識只能用小寫字母、數字和 -",
                    "en": "Use lowercase letters, digits and -"},
    "slug_taken": {"zh-CN": "该标识已被使用", "zh-HK": "該標識已被使用", "en": "Already taken"},
    "unknown_district": {"zh-CN": "商圈无效", "zh-HK": "商圈無效", "en": "Unknown district"},
    "invalid_choice": {"zh-CN": "选项无效", "zh-HK": "選項無效", "en": "Not a valid choice"},
    "cannot_publish": {"zh-CN": "当前状态不能发布", "zh-HK": "當前狀態不能發佈", "en": "Cannot be published now"},
    "cannot_withdraw": {"zh-CN": "当前状态不能下架", "zh-HK": "當前狀態不能下架", "en": "Cannot be withdrawn now"},
    "not_in_festival": {"zh-CN": "该优惠未关联活动", "zh-HK": "該優惠未關聯活動", "en": "Not linked to a festival"},
    "max_below_min": {"zh-CN": "最高价不能低于最低价", "zh-HK": "最高價不能低於最低價",
                      "en": "The maximum is below the minimum"},
    "password_too_short": {"zh-CN": "密码至少 10 个字符", "zh-HK": "密碼至少 10 個字元",
                           "en": "At least 10 characters"},
    "password_too_long": {"zh-CN": "密码过长", "zh-HK": "密碼過長", "en": "Too long"},
    "email_invalid": {"zh-CN": "邮箱地址无效", "zh-HK": "電郵地址無效", "en": "Not a valid email address"},
    "email_taken": {"zh-CN": "该邮箱已注册", "zh-HK": "該電郵已註冊", "en": "An account with this email exists"},
    "login_failed": {"zh-CN": "邮箱或密码不正确", "zh-HK": "電郵或密碼不正確", "en": "Wrong email or password"},
    "role_invalid": {"zh-CN": "角色无效", "zh-HK": "角色無效", "en": "Not a valid role"},
    "scopes_invalid": {"zh-CN": "权限范围无效", "zh-HK": "權限範圍無效", "en": "Not valid scopes"},
    "unknown_merchant": {"zh-CN": "没有这个商户", "zh-HK": "沒有這個商戶", "en": "No such merchant"},
    "conflict": {"zh-CN": "已被他人修改,请查看最新内容后再保存", "zh-HK": "已被他人修改,請查看最新內容後再儲存",
                 "en": "Someone else changed this since you opened it; review the current values and save again"},
}


def translate(key: str, locale: str) -> str:
    texts = MESSAGES.get(key)
    if texts is None:
        return key
    for candidate in FALLBACKS.get(locale, FALLBACKS["zh-CN"]):
        if candidate in texts:
            return texts[candidate]
    return key
