// pydantic v1 coercion as A1111's request models apply it: what is accepted, what it becomes,
// and the exact error item of what is refused.
#include <gtest/gtest.h>

#include <cmath>

#include "server/a1111/pydantic_coerce.h"

namespace sdc::server::a1111 {
namespace {

using nlohmann::json;

const json kLoc = json::array({"body", "x"});

std::optional<int64_t> as_int(const json& v, std::string* type = nullptr) {
  FieldErrors e;
  auto r = coerce_int(v, kLoc, e);
  if (type) {
    try {
      e.throw_if_any();
      *type = "";
    } catch (const ValidationError& err) {
      *type = err.errors()[0].type;
    }
  }
  return r;
}

TEST(A1111Coerce, IntegersAsPydanticV1) {
  EXPECT_EQ(as_int(20), 20);
  EXPECT_EQ(as_int("20"), 20);
  EXPECT_EQ(as_int(" -3 "), -3);
  EXPECT_EQ(as_int("1_000"), 1000);
  EXPECT_EQ(as_int(7.9), 7);  // int(7.9): truncation
  EXPECT_EQ(as_int(-7.9), -7);
  EXPECT_EQ(as_int(true), 1);
  EXPECT_EQ(as_int(false), 0);
  EXPECT_EQ(as_int(json(nullptr)), std::nullopt);
  EXPECT_EQ(as_int(json::parse("18446744073709551615")), INT64_MAX);  // saturates
  std::string type;
  for (const json& bad : {json("20.5"), json("abc"), json(""), json("1__0"), json::array(),
                          json::object(), json("_1")}) {
    EXPECT_EQ(as_int(bad, &type), std::nullopt) << bad;
    EXPECT_EQ(type, "type_error.integer") << bad;
  }
}

TEST(A1111Coerce, FloatsBoolsStrings) {
  FieldErrors e;
  EXPECT_EQ(coerce_float(7, kLoc, e), 7.0);
  EXPECT_EQ(coerce_float("1e-3", kLoc, e), 1e-3);
  EXPECT_EQ(coerce_float(" 2.5", kLoc, e), 2.5);
  EXPECT_EQ(coerce_float(true, kLoc, e), 1.0);
  EXPECT_TRUE(std::isnan(*coerce_float("nan", kLoc, e)));
  EXPECT_TRUE(std::isinf(*coerce_float("-Infinity", kLoc, e)));
  EXPECT_TRUE(e.empty());
  EXPECT_EQ(coerce_float("7,5", kLoc, e), std::nullopt);
  EXPECT_EQ(coerce_float(".", kLoc, e), std::nullopt);
  EXPECT_EQ(e.size(), 2u);

  FieldErrors b;
  EXPECT_EQ(coerce_bool("yes", kLoc, b), true);
  EXPECT_EQ(coerce_bool("OFF", kLoc, b), false);
  EXPECT_EQ(coerce_bool(0, kLoc, b), false);
  EXPECT_EQ(coerce_bool(1.0, kLoc, b), true);
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(coerce_bool(2, kLoc, b), std::nullopt);
  EXPECT_EQ(coerce_bool("maybe", kLoc, b), std::nullopt);
  try {
    b.throw_if_any();
    FAIL();
  } catch (const ValidationError& err) {
    EXPECT_EQ(err.body()["detail"][0], json({{"loc", {"body", "x"}},
                                             {"msg", "value could not be parsed to a boolean"},
                                             {"type", "type_error.bool"}}));
  }

  FieldErrors s;
  EXPECT_EQ(coerce_str(true, kLoc, s), "True");
  EXPECT_EQ(coerce_str(7, kLoc, s), "7");
  EXPECT_EQ(coerce_str(7.0, kLoc, s), "7.0");
  EXPECT_EQ(coerce_str(1e-5, kLoc, s), "1e-05");
  EXPECT_EQ(coerce_str(1e16, kLoc, s), "1e+16");
  EXPECT_EQ(coerce_str(0.0001, kLoc, s), "0.0001");
  EXPECT_EQ(coerce_str(123456.75, kLoc, s), "123456.75");
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(coerce_str(json::array({1}), kLoc, s), std::nullopt);
  EXPECT_EQ(coerce_str(json::object(), kLoc, s), std::nullopt);
  EXPECT_EQ(s.size(), 2u);
}

TEST(A1111Coerce, ListsAndConstraintMessages) {
  json body = {{"styles", {"a", 1, nullptr}}, {"steps", 200}, {"width", 500}};
  FieldErrors e;
  BodyReader r(body, e);
  EXPECT_EQ(r.get_str_list("styles"), std::nullopt);
  EXPECT_FALSE(r.check_le("steps", 200, 150));
  EXPECT_FALSE(r.check_multiple_of("width", 500, 8));
  try {
    e.throw_if_any();
    FAIL();
  } catch (const ValidationError& err) {
    const json d = err.body()["detail"];
    ASSERT_EQ(d.size(), 3u);
    EXPECT_EQ(d[0]["loc"], json({"body", "styles", 2}));
    EXPECT_EQ(d[0]["type"], "type_error.none.not_allowed");
    EXPECT_EQ(d[1], json({{"loc", {"body", "steps"}},
                          {"msg", "ensure this value is less than or equal to 150"},
                          {"type", "value_error.number.not_le"},
                          {"ctx", {{"limit_value", 150}}}}));
    EXPECT_EQ(d[2]["msg"], "ensure this value is a multiple of 8");
    EXPECT_NE(std::string(err.what()).find("body.steps"), std::string::npos);
  }
}

}  // namespace
}  // namespace sdc::server::a1111
