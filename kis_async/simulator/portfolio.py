"""What the simulated account holds, and a realistic sample portfolio for the demo."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal


@dataclass(frozen=True, slots=True)
class Holding:
    """One position. ``pending_sell`` is in unfilled sell orders, so not sellable again; ``loan``
    of the shares were bought on a 자기융자 loan taken on ``loan_date`` (``YYYYMMDD``)."""

    name: str
    quantity: int
    avg_price: Decimal
    now_price: Decimal
    bought_today: int = 0
    sold_today: int = 0
    pending_sell: int = 0
    loan: int = 0
    loan_date: str = ""

    @property
    def sellable(self) -> int:
        return max(0, self.quantity - self.pending_sell)

    def as_kis(self, pdno: str) -> dict[str, str]:
        """The inquire-psbl-sell ``output`` object, every value a string as KIS sends it."""
        return _sellable_row(pdno, self.name, self, self.quantity, self.sellable)

    def as_balance(self, pdno: str, *, live: bool = True) -> list[dict[str, str]]:
        """The inquire-balance ``output1`` rows for this position: with ``INQR_DVSN=01`` one
        per loan (현금, then 자기융자 with its ``loan_dt``), each with KIS's 26 keys; with
        ``live=False`` one row of the reference page's few keys."""
        if not live:
            full = self.as_kis(pdno)
            return [
                {
                    "pdno": pdno,
                    "prdt_name": self.name,
                    "hldg_qty": full["cblc_qty"],
                    "ord_psbl_qty": full["ord_psbl_qty"],
                    "pchs_avg_pric": full["pchs_avg_pric"],
                    "pchs_amt": full["pchs_amt"],
                    "prpr": full["now_pric"],
                    "evlu_amt": full["evlu_amt"],
                    "evlu_pfls_amt": full["evlu_pfls_amt"],
                    "evlu_pfls_rt": full["evlu_pfls_rt"],
                    "thdt_buyqty": full["buy_qty"],
                    "thdt_sll_qty": full["sll_qty"],
                }
            ]
        cash = self.quantity - self.loan
        cash_sellable = max(0, cash - self.pending_sell)
        rows = (
            [_balance_row(pdno, self, "현금", cash, cash_sellable, "")]
            if cash or not self.loan
            else []
        )
        if self.loan:
            pending_on_loan = max(0, self.pending_sell - cash)
            rows.append(
                _balance_row(
                    pdno, self, "자기융자", self.loan, self.loan - pending_on_loan, self.loan_date
                )
            )
        return rows


def _sellable_row(
    pdno: str, name: str, holding: Holding, quantity: int, sellable: int
) -> dict[str, str]:
    bought = holding.avg_price * quantity
    value = holding.now_price * quantity
    rate = (value - bought) / bought * 100 if bought else Decimal(0)
    return {
        "pdno": pdno,
        "prdt_name": name,
        "buy_qty": str(holding.bought_today),
        "sll_qty": str(holding.sold_today),
        "cblc_qty": str(quantity),
        "nsvg_qty": "0",
        "ord_psbl_qty": str(sellable),
        "pchs_avg_pric": f"{holding.avg_price:.4f}",
        "pchs_amt": str(_won(bought)),
        "now_pric": str(_won(holding.now_price)),
        "evlu_amt": str(_won(value)),
        "evlu_pfls_amt": str(_won(value - bought)),
        "evlu_pfls_rt": str(rate.quantize(Decimal("0.01"), ROUND_HALF_UP)),
    }


def _balance_row(
    pdno: str, holding: Holding, kind: str, quantity: int, sellable: int, loan_date: str
) -> dict[str, str]:
    """One inquire-balance row with the 26 keys KIS sends, in KIS's order."""
    own = _sellable_row(pdno, holding.name, holding, quantity, sellable)
    on_loan = kind != "현금"
    rate = Decimal(own["evlu_pfls_rt"])
    return {
        "pdno": pdno,
        "prdt_name": holding.name,
        "trad_dvsn_name": kind,
        "bfdy_buy_qty": "0",
        "bfdy_sll_qty": "0",
        "thdt_buyqty": "0" if on_loan else str(holding.bought_today),
        "thdt_sll_qty": "0" if on_loan else str(holding.sold_today),
        "hldg_qty": str(quantity),
        "ord_psbl_qty": str(sellable),
        "pchs_avg_pric": own["pchs_avg_pric"],
        "pchs_amt": own["pchs_amt"],
        "prpr": own["now_pric"],
        "evlu_amt": own["evlu_amt"],
        "evlu_pfls_amt": own["evlu_pfls_amt"],
        "evlu_pfls_rt": own["evlu_pfls_rt"],
        "evlu_erng_rt": f"{rate:.8f}",
        "loan_dt": loan_date,
        "loan_amt": str(_won(holding.avg_price * quantity * Decimal("0.6"))) if on_loan else "0",
        "stln_slng_chgs": "0",
        "expd_dt": "",
        "fltt_rt": "0.00000000",
        "bfdy_cprs_icdc": "0",
        "item_mgna_rt_name": "40%",
        "grta_rt_name": "",
        "sbst_pric": str(_won(holding.now_price * Decimal("0.7"))),
        "stck_loan_unpr": "0.0000",
    }


def not_held(pdno: str) -> dict[str, str]:
    """What KIS answers for a valid ticker the account does not hold: blanks, ``rt_cd`` "0"."""
    blank = dict.fromkeys(Holding("", 0, Decimal(0), Decimal(0)).as_kis(pdno), "")
    return blank | {"pdno": pdno}


def _won(amount: Decimal) -> Decimal:
    return amount.quantize(Decimal(1), ROUND_HALF_UP)


# Listed KRX stocks and ETFs (code, name) used by the demo portfolio.
KRX_NAMES: tuple[tuple[str, str], ...] = (
    ("005930", "삼성전자"),
    ("000660", "SK하이닉스"),
    ("373220", "LG에너지솔루션"),
    ("207940", "삼성바이오로직스"),
    ("005380", "현대차"),
    ("000270", "기아"),
    ("068270", "셀트리온"),
    ("005490", "POSCO홀딩스"),
    ("035420", "NAVER"),
    ("051910", "LG화학"),
    ("006400", "삼성SDI"),
    ("105560", "KB금융"),
    ("055550", "신한지주"),
    ("012330", "현대모비스"),
    ("028260", "삼성물산"),
    ("035720", "카카오"),
    ("066570", "LG전자"),
    ("003550", "LG"),
    ("032830", "삼성생명"),
    ("086790", "하나금융지주"),
    ("000810", "삼성화재"),
    ("017670", "SK텔레콤"),
    ("034730", "SK"),
    ("015760", "한국전력"),
    ("096770", "SK이노베이션"),
    ("009150", "삼성전기"),
    ("018260", "삼성에스디에스"),
    ("033780", "KT&G"),
    ("030200", "KT"),
    ("316140", "우리금융지주"),
    ("010130", "고려아연"),
    ("003670", "포스코퓨처엠"),
    ("011200", "HMM"),
    ("012450", "한화에어로스페이스"),
    ("329180", "HD현대중공업"),
    ("009540", "HD한국조선해양"),
    ("042660", "한화오션"),
    ("010140", "삼성중공업"),
    ("034020", "두산에너빌리티"),
    ("047050", "포스코인터내셔널"),
    ("259960", "크래프톤"),
    ("036570", "엔씨소프트"),
    ("251270", "넷마블"),
    ("352820", "하이브"),
    ("011170", "롯데케미칼"),
    ("004020", "현대제철"),
    ("000720", "현대건설"),
    ("024110", "기업은행"),
    ("138040", "메리츠금융지주"),
    ("323410", "카카오뱅크"),
    ("377300", "카카오페이"),
    ("090430", "아모레퍼시픽"),
    ("051900", "LG생활건강"),
    ("097950", "CJ제일제당"),
    ("271560", "오리온"),
    ("004370", "농심"),
    ("139480", "이마트"),
    ("023530", "롯데쇼핑"),
    ("161390", "한국타이어앤테크놀로지"),
    ("011780", "금호석유"),
    ("000100", "유한양행"),
    ("128940", "한미약품"),
    ("302440", "SK바이오사이언스"),
    ("326030", "SK바이오팜"),
    ("247540", "에코프로비엠"),
    ("086520", "에코프로"),
    ("293490", "카카오게임즈"),
    ("263750", "펄어비스"),
    ("112040", "위메이드"),
    ("041510", "에스엠"),
    ("035900", "JYP Ent."),
    ("122870", "와이지엔터테인먼트"),
    ("066970", "엘앤에프"),
    ("058470", "리노공업"),
    ("039030", "이오테크닉스"),
    ("357780", "솔브레인"),
    ("240810", "원익IPS"),
    ("036930", "주성엔지니어링"),
    ("042700", "한미반도체"),
    ("000990", "DB하이텍"),
    ("018880", "한온시스템"),
    ("002790", "아모레퍼시픽홀딩스"),
    ("001040", "CJ"),
    ("078930", "GS"),
    ("006360", "GS건설"),
    ("047040", "대우건설"),
    ("000880", "한화"),
    ("009830", "한화솔루션"),
    ("088350", "한화생명"),
    ("005830", "DB손해보험"),
    ("001450", "현대해상"),
    ("006800", "미래에셋증권"),
    ("016360", "삼성증권"),
    ("039490", "키움증권"),
    ("071050", "한국금융지주"),
    ("029780", "삼성카드"),
    ("035250", "강원랜드"),
    ("008770", "호텔신라"),
    ("021240", "코웨이"),
    ("267250", "HD현대"),
    ("010620", "HD현대미포"),
    ("180640", "한진칼"),
    ("003490", "대한항공"),
    ("011070", "LG이노텍"),
    ("034220", "LG디스플레이"),
    ("032640", "LG유플러스"),
    ("036460", "한국가스공사"),
    ("010950", "S-Oil"),
    ("028050", "삼성E&A"),
    ("267260", "HD현대일렉트릭"),
    ("298040", "효성중공업"),
    ("010120", "LS ELECTRIC"),
    ("006260", "LS"),
    ("064350", "현대로템"),
    ("047810", "한국항공우주"),
    ("079550", "LIG넥스원"),
    ("272210", "한화시스템"),
    ("000150", "두산"),
    ("241560", "두산밥캣"),
    ("042670", "HD현대인프라코어"),
    ("267270", "HD현대건설기계"),
    ("011790", "SKC"),
    ("361610", "SK아이이테크놀로지"),
    ("020150", "롯데에너지머티리얼즈"),
    ("005070", "코스모신소재"),
    ("450080", "에코프로머티"),
    ("005940", "NH투자증권"),
    ("138930", "BNK금융지주"),
    ("175330", "JB금융지주"),
    ("139130", "DGB금융지주"),
    ("000240", "한국앤컴퍼니"),
    ("004990", "롯데지주"),
    ("282330", "BGF리테일"),
    ("007070", "GS리테일"),
    ("069960", "현대백화점"),
    ("004170", "신세계"),
    ("111770", "영원무역"),
    ("081660", "휠라홀딩스"),
    ("192820", "코스맥스"),
    ("161890", "한국콜마"),
    ("185750", "종근당"),
    ("000120", "CJ대한통운"),
    ("086280", "현대글로비스"),
    ("028670", "팬오션"),
    ("003230", "삼양식품"),
    ("280360", "롯데웰푸드"),
    ("005300", "롯데칠성"),
    ("000080", "하이트진로"),
    ("035760", "CJ ENM"),
    ("030000", "제일기획"),
    ("079160", "CJ CGV"),
    ("039130", "하나투어"),
    ("020560", "아시아나항공"),
    ("272450", "진에어"),
    ("089590", "제주항공"),
    ("196170", "알테오젠"),
    ("028300", "HLB"),
    ("141080", "리가켐바이오"),
    ("214150", "클래시스"),
    ("145020", "휴젤"),
    ("095700", "제넥신"),
    ("214450", "파마리서치"),
    ("328130", "루닛"),
    ("338220", "뷰노"),
    ("403870", "HPSP"),
    ("095340", "ISC"),
    ("108320", "LX세미콘"),
    ("383310", "에코프로에이치엔"),
    ("278280", "천보"),
    ("348370", "엔켐"),
    ("069500", "KODEX 200"),
    ("102110", "TIGER 200"),
    ("229200", "KODEX 코스닥150"),
    ("122630", "KODEX 레버리지"),
    ("114800", "KODEX 인버스"),
    ("252670", "KODEX 200선물인버스2X"),
    ("233740", "KODEX 코스닥150레버리지"),
    ("360750", "TIGER 미국S&P500"),
    ("133690", "TIGER 미국나스닥100"),
    ("379800", "KODEX 미국S&P500TR"),
    ("305720", "KODEX 2차전지산업"),
    ("091160", "KODEX 반도체"),
    ("091170", "KODEX 은행"),
    ("148070", "KOSEF 국고채10년"),
    ("153130", "KODEX 단기채권"),
    ("214980", "KODEX 단기채권PLUS"),
    ("132030", "KODEX 골드선물(H)"),
    ("261240", "KODEX 미국달러선물"),
)

UNKNOWN_TICKERS: frozenset[str] = frozenset({"999990", "999999"})
"""Codes no exchange lists: the simulator answers inquire-psbl-sell for them with an error. The
sample account still carries two such positions (as a delisted stock lingers in a balance), so
the demo shows how a failed ticker is reported."""


def sample_portfolio(seed: int = 20261125) -> dict[str, Holding]:
    """A few hundred plausible positions, the same for the same seed.

    Roughly one in six was partly sold today, one in ten has an unfilled sell order, a few were
    sold out today (held 0, still listed by the balance), a few hold a third of their shares on
    a 자기융자 loan (listed twice by the balance), two are delisted (see
    :data:`UNKNOWN_TICKERS`), and prices sit within about 30% of the average cost, so the
    profit/loss column has both signs.
    """
    rng = random.Random(seed)
    portfolio: dict[str, Holding] = {}
    for pdno, name in KRX_NAMES:
        price = Decimal(rng.choice((1, 2, 5))) * Decimal(10) ** rng.randint(3, 5)
        avg = (price * Decimal(rng.uniform(0.7, 1.3))).quantize(Decimal("0.0001"))
        quantity = rng.randint(1, 400)
        sold = rng.randint(1, quantity) if rng.random() < 1 / 6 else 0
        pending = rng.randint(1, quantity) if rng.random() < 1 / 10 else 0
        bought = rng.randint(1, quantity) if rng.random() < 1 / 8 else 0
        portfolio[pdno] = Holding(name, quantity, avg, price, bought, sold, pending)
    for pdno in list(portfolio)[17::40]:
        was = portfolio[pdno]
        portfolio[pdno] = Holding(
            was.name, 0, was.avg_price, was.now_price, sold_today=was.quantity
        )
    for pdno in list(portfolio)[5::30]:
        was = portfolio[pdno]
        if was.quantity > 1:
            loan = max(1, was.quantity // 3)
            day = f"2026{rng.randint(1, 11):02d}{rng.randint(1, 28):02d}"
            portfolio[pdno] = dataclasses.replace(was, loan=loan, loan_date=day)
    for n, pdno in enumerate(sorted(UNKNOWN_TICKERS)):
        portfolio[pdno] = Holding(f"상장폐지 예시 {n + 1}", 10, Decimal(5000), Decimal(0))
    return portfolio
