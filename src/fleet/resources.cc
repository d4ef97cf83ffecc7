#include "fleet/resources.h"

#include <boost/json.hpp>
#include <cctype>

namespace inferd::fleet {

namespace json = boost::json;

namespace {

constexpr int64_t kGiB = 1024;  // MiB

// Rows: family, {size, vCPUs, memory GiB × 4 (quarters: c4 has 3.75 GiB), GPUs}.
struct Size {
  const char* size;
  int vcpus;
  int64_t memory_quarter_gib;
  int gpus;
};
struct Family {
  const char* family;
  std::initializer_list<Size> sizes;
};

std::map<std::string, InstanceResources> BuildTable() {
  // General purpose (1:4), compute (1:2), memory (1:8); AWS's published figures.
  const std::initializer_list<Size> m5 = {{"large", 2, 32, 0},      {"xlarge", 4, 64, 0},
                                          {"2xlarge", 8, 128, 0},   {"4xlarge", 16, 256, 0},
                                          {"12xlarge", 48, 768, 0}, {"24xlarge", 96, 1536, 0}};
  const std::initializer_list<Size> c5 = {{"large", 2, 16, 0},     {"xlarge", 4, 32, 0},
                                          {"2xlarge", 8, 64, 0},   {"4xlarge", 16, 128, 0},
                                          {"9xlarge", 36, 288, 0}, {"18xlarge", 72, 576, 0}};
  const std::initializer_list<Size> t = {
      {"medium", 2, 16, 0}, {"large", 2, 32, 0}, {"xlarge", 4, 64, 0}, {"2xlarge", 8, 128, 0}};
  const Family families[] = {
      {"t2", t},
      {"t3", t},
      {"m4",
       {{"xlarge", 4, 64, 0},
        {"2xlarge", 8, 128, 0},
        {"4xlarge", 16, 256, 0},
        {"10xlarge", 40, 640, 0},
        {"16xlarge", 64, 1024, 0}}},
      {"m5", m5},
      {"m5d", m5},
      {"m6i",
       {{"large", 2, 32, 0},
        {"xlarge", 4, 64, 0},
        {"2xlarge", 8, 128, 0},
        {"4xlarge", 16, 256, 0},
        {"8xlarge", 32, 512, 0},
        {"12xlarge", 48, 768, 0},
        {"16xlarge", 64, 1024, 0},
        {"24xlarge", 96, 1536, 0},
        {"32xlarge", 128, 2048, 0}}},
      {"c4",
       {{"large", 2, 15, 0},
        {"xlarge", 4, 30, 0},
        {"2xlarge", 8, 60, 0},
        {"4xlarge", 16, 120, 0},
        {"8xlarge", 36, 240, 0}}},
      {"c5", c5},
      {"c5d", c5},
      {"c6i",
       {{"large", 2, 16, 0},
        {"xlarge", 4, 32, 0},
        {"2xlarge", 8, 64, 0},
        {"4xlarge", 16, 128, 0},
        {"8xlarge", 32, 256, 0},
        {"12xlarge", 48, 384, 0},
        {"16xlarge", 64, 512, 0},
        {"24xlarge", 96, 768, 0},
        {"32xlarge", 128, 1024, 0}}},
      {"r5",
       {{"large", 2, 64, 0},
        {"xlarge", 4, 128, 0},
        {"2xlarge", 8, 256, 0},
        {"4xlarge", 16, 512, 0},
        {"12xlarge", 48, 1536, 0},
        {"24xlarge", 96, 3072, 0}}},
      {"g4dn",
       {{"xlarge", 4, 64, 1},
        {"2xlarge", 8, 128, 1},
        {"4xlarge", 16, 256, 1},
        {"8xlarge", 32, 512, 1},
        {"12xlarge", 48, 768, 4},
        {"16xlarge", 64, 1024, 1}}},
      {"g5",
       {{"xlarge", 4, 64, 1},
        {"2xlarge", 8, 128, 1},
        {"4xlarge", 16, 256, 1},
        {"8xlarge", 32, 512, 1},
        {"12xlarge", 48, 768, 4},
        {"16xlarge", 64, 1024, 1},
        {"24xlarge", 96, 1536, 4},
        {"48xlarge", 192, 3072, 8}}},
      {"p3", {{"2xlarge", 8, 244, 1}, {"8xlarge", 32, 976, 4}, {"16xlarge", 64, 1952, 8}}},
      // Inferentia chips are not GPUs.
      {"inf1",
       {{"xlarge", 4, 32, 0},
        {"2xlarge", 8, 64, 0},
        {"6xlarge", 24, 192, 0},
        {"24xlarge", 96, 768, 0}}},
  };
  std::map<std::string, InstanceResources> table;
  for (const Family& f : families) {
    for (const Size& s : f.sizes) {
      table[std::string("ml.") + f.family + "." + s.size] = {
          s.vcpus, s.memory_quarter_gib * kGiB / 4, s.gpus};
    }
  }
  return table;
}

// The size rule for types outside the table: the part after the last '.'.
InstanceResources FromSize(const std::string& type) {
  InstanceResources r;
  auto dot = type.rfind('.');
  std::string size = dot == std::string::npos ? type : type.substr(dot + 1);
  if (size == "medium" || size == "large") {
    r.vcpus = 2;
  } else if (size == "xlarge") {
    r.vcpus = 4;
  } else if (size.size() > 6 && size.compare(size.size() - 6, 6, "xlarge") == 0) {
    std::string n = size.substr(0, size.size() - 6);
    bool digits = !n.empty() && n.size() <= 4;
    for (char c : n) digits = digits && std::isdigit(static_cast<unsigned char>(c));
    r.vcpus = digits ? 4 * std::stoi(n) : 2;
  }
  r.memory_mib = int64_t{r.vcpus} * 4 * kGiB;
  return r;
}

}  // namespace

const std::map<std::string, InstanceResources>& BuiltinInstanceTypes() {
  static const std::map<std::string, InstanceResources> kTable = BuildTable();
  return kTable;
}

InstanceResources ResourcesFor(const std::string& type,
                               const std::map<std::string, InstanceResources>& overrides) {
  if (auto it = overrides.find(type); it != overrides.end()) return it->second;
  const auto& table = BuiltinInstanceTypes();
  if (auto it = table.find(type); it != table.end()) return it->second;
  return FromSize(type);
}

std::string Describe(const std::string& type, const InstanceResources& r) {
  return type + ": " + std::to_string(r.vcpus) + " vCPUs, " + std::to_string(r.memory_mib) +
         " MiB memory, " + std::to_string(r.gpus) + " GPUs";
}

Result<std::map<std::string, InstanceResources>> InstanceTypesFromJson(const json::value& v) {
  auto bad = [](std::string m) { return Error(Errc::kValidation, std::move(m)); };
  if (!v.is_object()) {
    return bad(
        "instance_types must be an object: {\"ml.m5.large\": {\"vcpu\": 2, \"memory_mib\": "
        "8192, \"gpus\": 0}}");
  }
  std::map<std::string, InstanceResources> out;
  for (const auto& [name, entry] : v.get_object()) {
    std::string type(name);
    if (type.rfind("ml.", 0) != 0) {
      return bad("instance_types: \"" + type + "\" is not an instance type name (ml.…)");
    }
    if (!entry.is_object()) return bad("instance_types: \"" + type + "\" must be an object");
    InstanceResources r = ResourcesFor(type, {});
    for (const auto& [field, value] : entry.get_object()) {
      if (!value.is_int64() && !value.is_uint64()) {
        return bad("instance_types: " + type + "." + std::string(field) + " must be an integer");
      }
      int64_t n = value.to_number<int64_t>();
      if (field == "vcpu") {
        if (n < 1 || n > 1024) return bad("instance_types: " + type + ".vcpu must be 1..1024");
        r.vcpus = static_cast<int>(n);
      } else if (field == "memory_mib") {
        if (n < 6 || n > (int64_t{1} << 32)) {
          return bad("instance_types: " + type + ".memory_mib must be at least 6");
        }
        r.memory_mib = n;
      } else if (field == "gpus") {
        if (n < 0 || n > 64) return bad("instance_types: " + type + ".gpus must be 0..64");
        r.gpus = static_cast<int>(n);
      } else {
        return bad("instance_types: " + type + " has an unknown member \"" + std::string(field) +
                   "\" (vcpu, memory_mib, gpus)");
      }
    }
    out[type] = r;
  }
  return out;
}

}  // namespace inferd::fleet
