# Lock digests computed the way sidekiq-unique-jobs v8 computes them, with Ruby's own JSON and OpenSSL.
#
# ARGV[0]: a JSON array of job hashes (class, queue, args or lock_args, optional apartment,
# unique_across_queues, unique_across_workers, lock_prefix).
# Prints a JSON array with, per job, {"legacy": "<prefix>:<md5>", "modern": "<prefix>:<sha3-256>", "json": ...}.
require "json"
require "openssl"

def digest_input(job)
  picked = {}
  %w[class queue lock_args apartment].each { |key| picked[key] = job[key] if job.key?(key) }
  picked["lock_args"] = job["args"] unless job.key?("lock_args")
  picked.delete("queue") if job["unique_across_queues"]
  picked.delete("class") if job["unique_across_workers"]
  JSON.generate(picked.sort)
end

results = JSON.parse(ARGV.fetch(0)).map do |job|
  text = digest_input(job)
  prefix = job["lock_prefix"] || "uniquejobs"
  {
    "json" => text,
    "legacy" => "#{prefix}:#{OpenSSL::Digest::MD5.hexdigest(text)}",
    "modern" => "#{prefix}:#{OpenSSL::Digest.new('SHA3-256', text).hexdigest}",
  }
end
puts JSON.generate(results)
