"""Specification of the quota domain rules, without any database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from meterai_quota.domain import errors
from meterai_quota.domain.errors import (
    AmountMismatch,
    IdempotencyConflict,
    InvalidArgument,
    InvalidPageToken,
    OrderAlreadyPaid,
    OrderCancelled,
    OrderExpired,
    PermissionDenied,
    QuotaError,
    UnbalancedTransaction,
)
from meterai_quota.domain.ledger_rules import (
    LOCK_ORDER,
    AccountKind,
    Posting,
    check_balanced,
    commit_postings,
    hold_postings,
    purchase_postings,
    release_postings,
)
from meterai_quota.domain.model import Order, OrderState, Principal, Role
from meterai_quota.domain.money import UNIT_PRICE_IDR, order_total
from meterai_quota.domain.orders import (
    check_cancellable,
    check_payable,
    check_same_purchase,
    is_redelivery,
)
from meterai_quota.domain.pagination import (
    MAX_PAGE_SIZE,
    clamp_page_size,
    decode_token,
    encode_token,
)
from meterai_quota.domain.serials import (
    ALPHABET,
    SERIAL_LENGTH,
    check_character,
    generate_serial,
    is_well_formed,
)

NOW = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
GRPC_CODES = {
    "INVALID_ARGUMENT",
    "FAILED_PRECONDITION",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "UNAUTHENTICATED",
    "PERMISSION_DENIED",
    "ABORTED",
}


def _order(**changes: object) -> Order:
    fields: dict[str, object] = {
        "id": "o1",
        "reseller_id": "r1",
        "owner_id": "r1",
        "quantity": 3,
        "unit_price_idr": UNIT_PRICE_IDR,
        "total_idr": 3 * UNIT_PRICE_IDR,
        "state": OrderState.AWAITING_PAYMENT,
        "idempotency_key": "k",
        "created_at": NOW,
        "expires_at": NOW + timedelta(hours=1),
        "payment_reference": None,
        "paid_at": None,
        "closed_at": None,
    }
    fields.update(changes)
    return Order(**fields)  # type: ignore[arg-type]


class TestSerials:
    def test_generated_serials_are_22_uppercase_alphanumerics_with_a_valid_check(self) -> None:
        for _ in range(1000):
            serial = generate_serial()
            assert len(serial) == SERIAL_LENGTH
            assert set(serial) <= set(ALPHABET)
            assert is_well_formed(serial)

    def test_generated_serials_do_not_repeat(self) -> None:
        assert len({generate_serial() for _ in range(10_000)}) == 10_000

    def test_every_single_character_typo_is_caught(self) -> None:
        serial = generate_serial()
        for position in range(SERIAL_LENGTH):
            for char in ALPHABET:
                if char != serial[position]:
                    typo = serial[:position] + char + serial[position + 1 :]
                    assert not is_well_formed(typo), typo

    def test_every_adjacent_transposition_is_caught(self) -> None:
        for _ in range(200):
            serial = generate_serial()
            for i in range(SERIAL_LENGTH - 1):
                if serial[i] != serial[i + 1]:
                    swapped = serial[:i] + serial[i + 1] + serial[i] + serial[i + 2 :]
                    assert not is_well_formed(swapped)

    @pytest.mark.parametrize(
        "candidate",
        ["", "ABC", "a" * 22, "A" * 23, "ABCDEFGHIJKLMNOPQRSTU-", "ÄBCDEFGHIJKLMNOPQRSTUV"],
    )
    def test_wrong_length_or_alphabet_is_malformed(self, candidate: str) -> None:
        assert not is_well_formed(candidate)

    def test_lower_case_is_not_folded(self) -> None:
        serial = next(s for s in iter(generate_serial, None) if any(c.isalpha() for c in s))
        assert not is_well_formed(serial.lower())

    def test_check_character_follows_iso_7064_mod_37_2(self) -> None:
        # Hand-computed: "1" weighs 1*2 = 2, so the check value is (1 - 2) mod 37 = 36 ("*"),
        # which serials never use; "A" (10) weighs 20, check (1 - 20) mod 37 = 18 ("I").
        assert check_character("1") is None
        assert check_character("A") == "I"

    def test_every_once_removed_transposition_is_caught(self) -> None:
        for _ in range(200):
            serial = generate_serial()
            for i in range(SERIAL_LENGTH - 2):
                if serial[i] != serial[i + 2]:
                    swapped = (
                        serial[:i] + serial[i + 2] + serial[i + 1] + serial[i] + serial[i + 3 :]
                    )
                    assert not is_well_formed(swapped)


class TestLedgerRules:
    @pytest.mark.parametrize(
        "postings", [purchase_postings(5), hold_postings(), commit_postings(), release_postings()]
    )
    def test_every_protocol_transaction_sums_to_zero(self, postings: tuple[Posting, ...]) -> None:
        assert sum(p.amount for p in postings) == 0

    def test_release_reverses_the_hold(self) -> None:
        held = {p.account: p.amount for p in hold_postings()}
        released = {p.account: p.amount for p in release_postings()}
        assert released == {account: -amount for account, amount in held.items()}

    @pytest.mark.parametrize(
        "postings",
        [
            (Posting(AccountKind.AVAILABLE, 1),),
            (Posting(AccountKind.AVAILABLE, 1), Posting(AccountKind.HELD, 1)),
            (Posting(AccountKind.AVAILABLE, 0), Posting(AccountKind.HELD, 0)),
        ],
    )
    def test_unbalanced_transactions_are_refused(self, postings: tuple[Posting, ...]) -> None:
        with pytest.raises(UnbalancedTransaction):
            check_balanced(postings)

    def test_accounts_are_locked_in_one_global_order(self) -> None:
        assert sorted(LOCK_ORDER, key=lambda kind: kind.value) == list(LOCK_ORDER)
        assert set(LOCK_ORDER) == set(AccountKind)


class TestMoney:
    def test_a_stamp_costs_ten_thousand_rupiah(self) -> None:
        assert order_total(3) == 30_000

    @pytest.mark.parametrize("quantity", [0, -1, 100_001, 1.5, True])
    def test_quantity_must_be_a_sane_whole_number(self, quantity: object) -> None:
        with pytest.raises(InvalidArgument):
            order_total(quantity)  # type: ignore[arg-type]


class TestOrderRules:
    def test_a_payment_of_the_exact_total_before_expiry_is_accepted(self) -> None:
        check_payable(_order(), 30_000, NOW)

    def test_a_wrong_amount_is_refused(self) -> None:
        with pytest.raises(AmountMismatch):
            check_payable(_order(), 20_000, NOW)

    def test_a_payment_after_the_window_is_refused(self) -> None:
        with pytest.raises(OrderExpired):
            check_payable(_order(), 30_000, NOW + timedelta(hours=1))

    def test_a_cancelled_order_cannot_be_paid(self) -> None:
        with pytest.raises(OrderCancelled):
            check_payable(_order(state=OrderState.CANCELLED), 30_000, NOW)

    def test_the_same_payment_again_is_a_redelivery_another_is_refused(self) -> None:
        paid = _order(state=OrderState.PAID, payment_reference="pay-1")
        assert is_redelivery(paid, "pay-1")
        assert not is_redelivery(paid, "pay-2")
        with pytest.raises(OrderAlreadyPaid):
            check_payable(paid, 30_000, NOW)

    def test_replaying_a_purchase_with_another_quantity_conflicts(self) -> None:
        assert check_same_purchase(_order(), 3).id == "o1"
        with pytest.raises(IdempotencyConflict):
            check_same_purchase(_order(), 4)

    def test_cancelling_is_idempotent_but_not_for_paid_orders(self) -> None:
        assert check_cancellable(_order()) is True
        assert check_cancellable(_order(state=OrderState.CANCELLED)) is False
        with pytest.raises(OrderAlreadyPaid):
            check_cancellable(_order(state=OrderState.PAID, payment_reference="p"))


class TestPagination:
    def test_page_size_defaults_to_20_and_is_capped_at_100(self) -> None:
        assert clamp_page_size(None) == 20
        assert clamp_page_size(0) == 20
        assert clamp_page_size(5) == 5
        assert clamp_page_size(10_000) == MAX_PAGE_SIZE == 100

    def test_a_token_round_trips_only_for_its_own_listing(self) -> None:
        token = encode_token("entries", [42])
        assert decode_token("entries", token, (int,)) == [42]
        with pytest.raises(InvalidPageToken):
            decode_token("orders", token, (str, str))

    @pytest.mark.parametrize("token", ["!!!", "e30", encode_token("entries", ["x"])])
    def test_garbage_tokens_are_invalid_arguments(self, token: str) -> None:
        with pytest.raises(InvalidPageToken) as caught:
            decode_token("entries", token, (int,))
        assert caught.value.code == "INVALID_ARGUMENT"


class TestPrincipals:
    def test_operators_act_for_anyone_resellers_only_for_themselves(self) -> None:
        Principal(None, None, Role.OPERATOR).require_access("r1")
        Principal("r1", "r1", Role.RESELLER).require_access("r1")
        with pytest.raises(PermissionDenied):
            Principal("r2", "r1", Role.RESELLER).require_access("r1")


def test_every_error_maps_to_a_grpc_status_code() -> None:
    classes = [getattr(errors, name) for name in errors.__all__]
    assert all(issubclass(cls, QuotaError) for cls in classes)
    assert {cls.code for cls in classes} <= GRPC_CODES
