"""The JSON API keeps to its own OpenAPI description (``/openapi.json``), checked by
schemathesis: for requests it generates from that description, every answer has a documented
status and a body of the documented shape, and nothing answers 5xx. (Schemathesis's "valid
data is accepted" check is left out for uploads only: a schema cannot say "a PDF", so random
bytes rightly get 400.)"""

from __future__ import annotations

import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.checks import positive_data_acceptance

from tests.integration.verify.conftest import StartSite


def test_every_answer_keeps_to_the_openapi_description(
    start_site: StartSite, stamped: bytes
) -> None:
    # Uploads: random bytes, truncated and intact sealed PDFs.
    schemathesis.openapi.media_type(
        "application/pdf",
        st.one_of(
            st.binary(max_size=4096),
            st.just(stamped),
            st.binary().map(lambda b: stamped[: len(b) * 50]),
        ),
    )
    site = start_site()
    ca = str(site.settings.tls_files.ca_certificate)
    schema = schemathesis.openapi.from_url(f"{site.url}/openapi.json", verify=ca)
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert {op.label for op in operations} >= {
        "GET /api/v1/serials/{serial}",
        "POST /api/v1/documents:verify",
        "GET /api/v1/revisions/{sha256}.pdf",
    }
    session = requests.Session()
    session.verify = ca
    calls: list[int] = []

    @settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def check(data: st.DataObject) -> None:
        for operation in operations:
            case = data.draw(operation.as_strategy())
            response = case.call_and_validate(
                base_url=site.url,
                session=session,
                verify=ca,
                # Any bytes fit "binary", but only a PDF is a valid upload: 400 is right.
                excluded_checks=[positive_data_acceptance] if operation.method == "post" else [],
            )
            calls.append(response.status_code)

    check()
    assert calls and all(code < 500 for code in calls)
