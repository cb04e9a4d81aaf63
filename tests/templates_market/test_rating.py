"""Rating templates: one rating per user, exact summaries (docs/api.md §10)."""

import threading

import pytest
from django.db import connection

from core.exceptions import InvalidInput
from templates_market import services
from templates_market.models import ConnectorTemplate, TemplateRating
from tests.conftest import client_for
from tests.factories import UserFactory

from .conftest import definition

URL = "/api/v1/connector-templates"


def rate(api, template, rating, **extra):
    return api.post(f"{URL}/{template.id}/rate", {"rating": rating, **extra}, format="json")


def test_rate_returns_the_summary(alice_api, make_template):
    template = make_template()

    response = rate(alice_api, template, 4, review="Works well")

    assert response.status_code == 200
    assert response.json() == {"rating_average": 4.0, "rating_count": 1}
    stored = TemplateRating.objects.get()
    assert (stored.rating, stored.review) == (4, "Works well")


def test_average_over_several_users(alice_api, bob_api, loner, make_template):
    template = make_template()

    rate(alice_api, template, 5)
    rate(bob_api, template, 4)
    response = rate(client_for(loner), template, 4)

    assert response.json() == {"rating_average": 4.33, "rating_count": 3}
    template.refresh_from_db()
    assert (template.rating_average, template.rating_count) == (4.33, 3)
    assert alice_api.get(f"{URL}/{template.id}").json()["rating_average"] == 4.33


def test_rating_again_replaces_the_users_rating(alice_api, bob_api, make_template):
    template = make_template()
    rate(alice_api, template, 1, review="Broken")
    rate(bob_api, template, 5)

    response = rate(alice_api, template, 3)

    assert response.json() == {"rating_average": 4.0, "rating_count": 2}
    alices = TemplateRating.objects.get(user__email="alice@acme.test")
    assert (alices.rating, alices.review) == (3, "")


@pytest.mark.parametrize("body", [{"rating": 0}, {"rating": 6}, {"rating": "x"}, {"rating": 4.5}, {}])
def test_invalid_rating_is_400(alice_api, make_template, body):
    template = make_template()

    response = alice_api.post(f"{URL}/{template.id}/rate/", body, format="json")

    assert response.status_code == 400
    assert list(response.json()) == ["rating"]
    assert not TemplateRating.objects.exists()


def test_staff_without_a_workspace_can_rate(staff_api, make_template):
    template = make_template()

    assert rate(staff_api, template, 5).status_code == 200


def test_private_template_cannot_be_rated_by_members(alice_api, make_template):
    template = make_template(is_public=False)

    assert rate(alice_api, template, 5).status_code == 404


def test_rating_service_refuses_out_of_range(alice, make_template):
    template = make_template()

    with pytest.raises(InvalidInput):
        services.template_rate(template=template, user=alice, rating=6)


@pytest.mark.django_db(transaction=True)
def test_concurrent_ratings_keep_the_summary_exact():
    template = ConnectorTemplate.objects.create(name="T", slug="t", definition=definition())
    ratings = [5, 4, 3, 5, 1, 2, 4, 5]
    users = [UserFactory() for _ in ratings]
    barrier = threading.Barrier(len(users))
    errors: list[BaseException] = []

    def rate_once(user, rating):
        try:
            barrier.wait()
            services.template_rate(template=template, user=user, rating=rating)
        except BaseException as error:  # reported below, so a failure in a thread fails the test
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=rate_once, args=pair) for pair in zip(users, ratings, strict=True)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    template.refresh_from_db()
    assert template.rating_count == len(ratings)
    assert template.rating_average == round(sum(ratings) / len(ratings), 2)


@pytest.mark.django_db(transaction=True)
def test_concurrent_ratings_by_the_same_user_leave_one_rating():
    template = ConnectorTemplate.objects.create(name="T", slug="t", definition=definition())
    user = UserFactory()
    barrier = threading.Barrier(5)
    errors: list[BaseException] = []

    def rate_once(rating):
        try:
            barrier.wait()
            services.template_rate(template=template, user=user, rating=rating)
        except BaseException as error:  # reported below, so a failure in a thread fails the test
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=rate_once, args=(rating,)) for rating in range(1, 6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    template.refresh_from_db()
    stored = TemplateRating.objects.get(template=template)
    assert template.rating_count == 1
    assert template.rating_average == stored.rating
