import pytest

from finmon.model import POLICY_NONE, POLICY_OK, AppSnapshot, PolicyVersion

POLICY_URL = "http://127.0.0.1:8000/policies/acme/p1.html"


def policy(text: str, url: str = POLICY_URL, language: str = "zh") -> PolicyVersion:
    return PolicyVersion(url=url, final_url=url, fetched_at="2026-01-01T00:00:00+00:00", sha256="0" * 64,
                         text=text, language=language, content_type="html")


def snapshot(name="示例借款", *, platform="android", permissions=(), text=None, status=None, url=None,
             category="金融理财", developer="示例科技有限公司", description="", package="com.example.app",
             language="zh") -> AppSnapshot:
    """A hand-built app: a policy ``text`` means a fetched policy (status ok) unless ``status`` says otherwise."""
    pol = policy(text, language=language) if text is not None else None
    if status is None:
        status = POLICY_OK if pol is not None else POLICY_NONE
    if url is None and pol is not None:
        url = pol.url
    return AppSnapshot(
        key=f"{platform}:{package}", platform=platform, package=package, name=name, developer=developer,
        category=category, description=description,
        permissions=frozenset(p if "." in p else f"android.permission.{p}" for p in permissions),
        policy=pol if status == POLICY_OK else None, policy_status=status, policy_url=url,
    )


@pytest.fixture
def make_app():
    return snapshot


@pytest.fixture
def make_policy():
    return policy
