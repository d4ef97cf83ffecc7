#include "catalog/store.h"

#include <gtest/gtest.h>

#include <filesystem>

namespace inferd::catalog {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("inferd-store-" + std::to_string(::getpid()) + "-" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    Reopen();
  }
  void TearDown() override {
    store_.reset();
    std::filesystem::remove_all(dir_);
  }
  void Reopen() {
    store_.reset();
    auto s = CatalogStore::Open(dir_ / "catalog.db");
    ASSERT_TRUE(s.ok()) << s.error().message;
    store_ = std::move(s).value();
  }
  Resource Model(const std::string& name, double t) {
    return {Kind::kModel, "us-east-1", name, "arn:" + name, t, t, "", "{}"};
  }

  std::filesystem::path dir_;
  std::unique_ptr<CatalogStore> store_;
};

TEST_F(StoreTest, InsertGetIsCaseInsensitiveAndDurable) {
  ASSERT_TRUE(store_->Insert(Model("MyModel", 1), {{"k", "v"}}).ok());
  auto dup = store_->Insert(Model("mymodel", 2));
  ASSERT_FALSE(dup.ok());
  EXPECT_EQ(dup.error().code, Errc::kAlreadyExists);
  Reopen();
  auto got = store_->Get(Kind::kModel, "us-east-1", "MYMODEL");
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->name, "MyModel");
  EXPECT_FALSE(store_->Get(Kind::kModel, "us-west-2", "MyModel").ok());
  EXPECT_FALSE(store_->Get(Kind::kEndpoint, "us-east-1", "MyModel").ok());
  auto tags = store_->ListTags("arn:MyModel", 50, "");
  ASSERT_TRUE(tags.ok());
  ASSERT_EQ(tags->first.size(), 1u);
  EXPECT_EQ(tags->first[0].value, "v");
}

TEST_F(StoreTest, RemoveDropsTags) {
  ASSERT_TRUE(store_->Insert(Model("a", 1), {{"k", "v"}}).ok());
  ASSERT_TRUE(store_->Remove(Kind::kModel, "us-east-1", "A").ok());
  EXPECT_EQ(store_->Remove(Kind::kModel, "us-east-1", "a").error().code, Errc::kNotFound);
  EXPECT_TRUE(store_->ListTags("arn:a", 50, "")->first.empty());
  EXPECT_FALSE(store_->ArnExists("arn:a"));
}

TEST_F(StoreTest, ListsSortedFilteredAndPaginated) {
  for (int i = 0; i < 25; ++i) {
    ASSERT_TRUE(store_->Insert(Model("m" + std::to_string(100 + i), 1000 + i)).ok());
  }
  ListQuery q;
  q.limit = 10;
  std::vector<std::string> names;
  for (;;) {
    auto page = store_->List(Kind::kModel, "us-east-1", q);
    ASSERT_TRUE(page.ok()) << page.error().message;
    for (auto& r : page->items) names.push_back(r.name);
    if (page->next_token.empty()) break;
    q.next_token = page->next_token;
  }
  ASSERT_EQ(names.size(), 25u);
  EXPECT_EQ(names.front(), "m124");  // CreationTime descending by default
  EXPECT_EQ(names.back(), "m100");

  ListQuery byname;
  byname.sort_by = SortBy::kName;
  byname.descending = false;
  byname.name_contains = "M11";
  byname.creation_after = 1012.5;
  auto page = store_->List(Kind::kModel, "us-east-1", byname);
  ASSERT_TRUE(page.ok());
  ASSERT_EQ(page->items.size(), 7u);  // m113..m119
  EXPECT_EQ(page->items.front().name, "m113");

  ListQuery bad;
  bad.next_token = "not-a-token";
  EXPECT_EQ(store_->List(Kind::kModel, "us-east-1", bad).error().code, Errc::kValidation);
}

TEST_F(StoreTest, TagsOverwriteAndLimit) {
  ASSERT_TRUE(store_->Insert(Model("a", 1)).ok());
  std::vector<Tag> tags;
  for (int i = 0; i < 50; ++i) tags.push_back({"k" + std::to_string(i), "v"});
  ASSERT_TRUE(store_->AddTags("arn:a", tags).ok());
  ASSERT_TRUE(store_->AddTags("arn:a", {{"k1", "new"}}).ok());
  auto over = store_->AddTags("arn:a", {{"extra", "x"}});
  ASSERT_FALSE(over.ok());
  EXPECT_EQ(over.error().code, Errc::kResourceLimit);
  auto first = store_->ListTags("arn:a", 30, "");
  ASSERT_TRUE(first.ok());
  EXPECT_EQ(first->first.size(), 30u);
  auto second = store_->ListTags("arn:a", 30, first->second);
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->first.size(), 20u);
  EXPECT_TRUE(second->second.empty());
  ASSERT_TRUE(store_->DeleteTags("arn:a", {"k1", "k2", "absent"}).ok());
  EXPECT_EQ(store_->ListTags("arn:a", 100, "")->first.size(), 48u);
}

}  // namespace
}  // namespace inferd::catalog
