"""Every error a person can meet is Chinese, with a stable code, in the service's one body shape."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

CHINESE = re.compile(r"[\u4e00-\u9fff]")


def error(response) -> dict:  # type: ignore[no-untyped-def]
    body = response.json()
    assert set(body) == {"error"}, body
    assert CHINESE.search(body["error"]["message"]), body
    return body["error"]


def test_an_unknown_path_is_a_chinese_404(client: TestClient) -> None:
    response = client.get("/no-such-thing")
    assert response.status_code == 404
    assert error(response)["code"] == "not_found"


def test_a_wrong_method_is_a_chinese_405(client: TestClient) -> None:
    response = client.delete("/ledger")
    assert response.status_code == 405
    assert error(response)["code"] == "method_not_allowed"


def test_malformed_json_names_the_body_not_a_character_offset(client: TestClient) -> None:
    response = client.post("/cases", content=b'{"channel": "hotline",,}', headers={"content-type": "application/json"})
    assert response.status_code == 422
    fields = error(response)["fields"]
    assert [f["field"] for f in fields] == ["body"]
    assert CHINESE.search(fields[0]["reason"]) and "JSON" in fields[0]["reason"]


def test_validation_reasons_are_chinese(client: TestClient) -> None:
    response = client.get("/events", params={"case": "not-a-uuid", "limit": 0})
    assert response.status_code == 422
    fields = {f["field"]: f["reason"] for f in error(response)["fields"]}
    assert fields == {"query.case": fields["query.case"], "query.limit": "不得小于 1"}
    assert "UUID" in fields["query.case"] and CHINESE.search(fields["query.case"])
    assert all(CHINESE.search(reason) for reason in fields.values())


def test_openapi_declares_the_error_body_the_service_sends(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert "HTTPValidationError" not in str(schema)
    unprocessable = schema["paths"]["/cases"]["post"]["responses"]["422"]
    assert unprocessable["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/ErrorBody"}
    assert schema["components"]["schemas"]["Error"]["required"] == ["code", "message"]
