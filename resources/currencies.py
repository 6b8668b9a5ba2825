"""ISO 4217 currencies: the codes a shop may be registered in and store prices are checked
against, with their minor units (absent from ZERO/THREE/FOUR_DECIMAL means 2)."""

ZERO_DECIMAL = frozenset(
    "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split()
)
THREE_DECIMAL = frozenset("BHD IQD JOD KWD LYD OMR TND".split())
FOUR_DECIMAL = frozenset("CLF UYW".split())
TWO_DECIMAL = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP
    BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD
    FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT
    LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO
    NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS
    SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD
    XCG YER ZAR ZMW ZWG ZWL""".split()
)
CURRENCIES = ZERO_DECIMAL | THREE_DECIMAL | FOUR_DECIMAL | TWO_DECIMAL


def unknown_currency_problem(code: str) -> str | None:
    """Why `code` is not a currency a shop can sell in, or None when it is one."""
    if code in CURRENCIES:
        return None
    return f"currency {code!r} is not an ISO 4217 code (e.g. EUR, USD, JPY)"
